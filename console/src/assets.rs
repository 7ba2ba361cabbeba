//! The pages, embedded in the binary with `include_str!`: plain HTML, CSS
//! and JavaScript, no build step, nothing fetched from elsewhere.

/// One embedded file.
#[derive(Debug)]
pub struct Asset {
    pub bytes: &'static str,
    pub content_type: &'static str,
}

const INDEX: Asset = Asset {
    bytes: include_str!("../assets/index.html"),
    content_type: "text/html; charset=utf-8",
};
const SCRIPT: Asset = Asset {
    bytes: include_str!("../assets/app.js"),
    content_type: "text/javascript; charset=utf-8",
};
const SETTINGS: Asset = Asset {
    bytes: include_str!("../assets/settings.js"),
    content_type: "text/javascript; charset=utf-8",
};
const ADMIN: Asset = Asset {
    bytes: include_str!("../assets/admin.js"),
    content_type: "text/javascript; charset=utf-8",
};
const STYLE: Asset = Asset {
    bytes: include_str!("../assets/app.css"),
    content_type: "text/css; charset=utf-8",
};

/// The asset at `path` (below the console's prefix, without its `/`).
pub fn get(path: &str) -> Option<&'static Asset> {
    match path {
        "" | "index.html" => Some(&INDEX),
        "app.js" => Some(&SCRIPT),
        "settings.js" => Some(&SETTINGS),
        "admin.js" => Some(&ADMIN),
        "app.css" => Some(&STYLE),
        _ => None,
    }
}
