//! A policy document as stored: its text (what GetPolicy gives back,
//! byte for byte) and its parsed form, parsed once when it is set or
//! loaded.

use std::sync::Arc;

use serde::{Deserialize, Serialize};

use crate::PolicyError;
use crate::policy::{Policy, PolicyKind};

/// An identity policy (user, group, role, managed, service account or
/// session policy).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdentityDoc {
    text: String,
    parsed: Arc<Policy>,
}

/// A role's trust policy.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct TrustDoc {
    text: String,
    parsed: Arc<Policy>,
}

macro_rules! doc_impl {
    ($t:ident, $kind:expr) => {
        impl $t {
            /// Parses and checks `text`.
            pub fn parse(text: &str) -> Result<Self, PolicyError> {
                Ok($t {
                    parsed: Arc::new(Policy::parse(text, $kind)?),
                    text: text.to_owned(),
                })
            }

            /// The document as it was given.
            pub fn text(&self) -> &str {
                &self.text
            }

            /// The parsed document.
            pub fn policy(&self) -> &Arc<Policy> {
                &self.parsed
            }
        }

        impl TryFrom<String> for $t {
            type Error = PolicyError;
            fn try_from(text: String) -> Result<Self, PolicyError> {
                Ok($t {
                    parsed: Arc::new(Policy::parse(&text, $kind)?),
                    text,
                })
            }
        }

        impl From<$t> for String {
            fn from(d: $t) -> String {
                d.text
            }
        }
    };
}

doc_impl!(IdentityDoc, PolicyKind::Identity);
doc_impl!(TrustDoc, PolicyKind::Trust);
