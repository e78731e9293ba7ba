//! Helpers for the web pages' tests: a client that behaves like a cookie-less browser that
//! shows redirects, and reading the answers.

use reqwest::Response;

/// A client that shows redirects rather than following them, and keeps no cookies.
pub fn browser() -> reqwest::Client {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap()
}

/// A redirect's `Location`.
pub fn location(resp: &Response) -> String {
    resp.headers()["location"].to_str().unwrap().to_string()
}
