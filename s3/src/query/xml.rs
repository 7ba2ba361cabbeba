//! Query-protocol response bodies, written with quick-xml:
//!
//! ```text
//! <CreateUserResponse xmlns="https://iam.amazonaws.com/doc/2010-05-08/">
//!   <CreateUserResult>...</CreateUserResult>
//!   <ResponseMetadata><RequestId>..</RequestId></ResponseMetadata>
//! </CreateUserResponse>
//! ```
//!
//! and `<ErrorResponse><Error><Type/><Code/><Message/></Error><RequestId/></ErrorResponse>`.
//! Lists are `<Name><member>..</member>...</Name>`, timestamps ISO 8601.

use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use super::error::QueryError;

/// The namespace of IAM's responses.
pub(crate) const IAM_NS: &str = "https://iam.amazonaws.com/doc/2010-05-08/";
/// The namespace of STS's responses.
pub(crate) const STS_NS: &str = "https://sts.amazonaws.com/doc/2011-06-15/";

/// An XML fragment (an action's result members) or document.
pub(crate) struct Xml(Writer<Vec<u8>>);

impl Default for Xml {
    fn default() -> Self {
        Self::new()
    }
}

impl Xml {
    pub(crate) fn new() -> Self {
        Xml(Writer::new(Vec::new()))
    }

    // Writing to a Vec cannot fail: the io::Result of each event is
    // always Ok.
    fn event(&mut self, e: Event<'_>) {
        let _ = self.0.write_event(e);
    }

    pub(crate) fn open(&mut self, name: &str) -> &mut Self {
        self.event(Event::Start(BytesStart::new(name)));
        self
    }

    pub(crate) fn close(&mut self, name: &str) -> &mut Self {
        self.event(Event::End(BytesEnd::new(name)));
        self
    }

    /// `<name>text</name>`, the text escaped.
    pub(crate) fn leaf(&mut self, name: &str, text: &str) -> &mut Self {
        self.open(name).text(text).close(name)
    }

    /// Escaped text inside the element open.
    pub(crate) fn text(&mut self, text: &str) -> &mut Self {
        self.event(Event::Text(BytesText::new(text)));
        self
    }

    /// A leaf when `text` is present.
    pub(crate) fn leaf_opt(&mut self, name: &str, text: Option<&str>) -> &mut Self {
        if let Some(t) = text {
            self.leaf(name, t);
        }
        self
    }

    /// `<name>` with a timestamp (seconds since the epoch) in ISO 8601.
    pub(crate) fn time(&mut self, name: &str, secs: i64) -> &mut Self {
        self.leaf(name, &iso8601(secs))
    }

    /// `<name><member>..</member>...</name>`, each member written by `f`.
    pub(crate) fn list<T>(
        &mut self,
        name: &str,
        items: &[T],
        mut f: impl FnMut(&mut Xml, &T),
    ) -> &mut Self {
        self.open(name);
        for it in items {
            self.open("member");
            f(self, it);
            self.close("member");
        }
        self.close(name)
    }

    /// `IsTruncated` and, when truncated, `Marker`.
    pub(crate) fn truncated(&mut self, next: Option<&str>) -> &mut Self {
        self.leaf("IsTruncated", if next.is_some() { "true" } else { "false" });
        self.leaf_opt("Marker", next)
    }

    fn raw(&mut self, bytes: &[u8]) {
        self.0.get_mut().extend_from_slice(bytes);
    }

    fn declaration(&mut self) {
        self.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
    }

    pub(crate) fn into_bytes(self) -> Vec<u8> {
        self.0.into_inner()
    }
}

/// A timestamp as AWS writes them: `2026-12-06T19:04:48Z`.
pub(crate) fn iso8601(secs: i64) -> String {
    let t =
        time::OffsetDateTime::from_unix_timestamp(secs).unwrap_or(time::OffsetDateTime::UNIX_EPOCH);
    let f = time::macros::format_description!("[year]-[month]-[day]T[hour]:[minute]:[second]Z");
    t.format(&f).unwrap_or_default()
}

/// The response of `action` with its result members (`None`: an action
/// without output, which AWS answers with `ResponseMetadata` alone).
pub(crate) fn response(action: &str, ns: &str, result: Option<Xml>, request_id: &str) -> Vec<u8> {
    let mut x = Xml::new();
    x.declaration();
    let root = format!("{action}Response");
    x.event(Event::Start(
        BytesStart::new(root.as_str()).with_attributes([("xmlns", ns)]),
    ));
    if let Some(r) = result {
        let wrapper = format!("{action}Result");
        x.open(&wrapper);
        x.raw(&r.into_bytes());
        x.close(&wrapper);
    }
    x.open("ResponseMetadata")
        .leaf("RequestId", request_id)
        .close("ResponseMetadata");
    x.close(&root);
    x.into_bytes()
}

/// The body of an error answer.
pub(crate) fn error(e: &QueryError, ns: &str, request_id: &str) -> Vec<u8> {
    let mut x = Xml::new();
    x.declaration();
    x.event(Event::Start(
        BytesStart::new("ErrorResponse").with_attributes([("xmlns", ns)]),
    ));
    x.open("Error")
        .leaf("Type", e.fault())
        .leaf("Code", e.code)
        .leaf("Message", &e.message)
        .close("Error");
    x.leaf("RequestId", request_id);
    x.close("ErrorResponse");
    x.into_bytes()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn documents() {
        let mut r = Xml::new();
        r.open("User")
            .leaf("UserName", "a<b&c")
            .time("CreateDate", 0)
            .close("User");
        let body = String::from_utf8(response("CreateUser", IAM_NS, Some(r), "RID")).unwrap();
        assert_eq!(
            body,
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><CreateUserResponse xmlns=\"https://iam.amazonaws.com/doc/2010-05-08/\">\
             <CreateUserResult><User><UserName>a&lt;b&amp;c</UserName><CreateDate>1970-01-01T00:00:00Z</CreateDate></User></CreateUserResult>\
             <ResponseMetadata><RequestId>RID</RequestId></ResponseMetadata></CreateUserResponse>"
        );
        let body = String::from_utf8(response("DeleteUser", IAM_NS, None, "R")).unwrap();
        assert!(body.contains("<DeleteUserResponse xmlns") && !body.contains("DeleteUserResult"));
        let e = QueryError::no_such("The user with name x cannot be found.");
        let body = String::from_utf8(error(&e, IAM_NS, "R")).unwrap();
        assert!(body.contains(
            "<Error><Type>Sender</Type><Code>NoSuchEntity</Code><Message>The user with name x cannot be found.</Message></Error><RequestId>R</RequestId></ErrorResponse>"
        ));
    }

    #[test]
    fn lists_and_times() {
        let mut x = Xml::new();
        x.list("PolicyNames", &["a", "b"], |x, n| {
            x.text(n);
        });
        assert_eq!(
            String::from_utf8(x.into_bytes()).unwrap(),
            "<PolicyNames><member>a</member><member>b</member></PolicyNames>"
        );
        assert_eq!(iso8601(1_700_000_000), "2023-11-14T22:13:20Z");
    }
}
