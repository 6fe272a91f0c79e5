//! Cookie authentication, as Bitcoin Core does it: a random secret written at start to a file
//! only the node's user can read, presented as HTTP basic auth with the user `__cookie__`.

use std::io::Write;
use std::path::Path;

use axum::http::HeaderMap;
use axum::http::header::{AUTHORIZATION, HOST, ORIGIN};
use base64::Engine;
use rand::RngCore;

/// The user name that goes with the cookie secret.
pub const COOKIE_USER: &str = "__cookie__";

/// The cookie secret.
#[derive(Clone)]
pub struct Cookie(String);

impl std::fmt::Debug for Cookie {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Cookie(..)")
    }
}

/// Makes a fresh secret and writes `__cookie__:<secret>` to `path`, readable by its owner only.
pub fn write_cookie(path: &Path) -> std::io::Result<Cookie> {
    let mut bytes = [0u8; 32];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    let secret = hex::encode(bytes);
    let temporary = path.with_extension("tmp");
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
    let mut file = options.open(&temporary)?;
    file.write_all(format!("{COOKIE_USER}:{secret}").as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&temporary, path)?;
    Ok(Cookie(secret))
}

/// Compares without an early exit, so that timing does not reveal how much of a guess was right.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

pub(crate) fn is_authorised(headers: &HeaderMap, cookie: &Cookie, user: Option<&(String, String)>) -> bool {
    let Some(value) = headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()) else { return false };
    let Some(encoded) = value.strip_prefix("Basic ") else { return false };
    let Ok(decoded) = base64::engine::general_purpose::STANDARD.decode(encoded.trim()) else { return false };
    let Some((name, password)) = std::str::from_utf8(&decoded).ok().and_then(|s| s.split_once(':')) else {
        return false;
    };
    credentials_match(name, password, cookie, user)
}

/// Whether `name` and `password` are the cookie's or the configured user's.
pub(crate) fn credentials_match(name: &str, password: &str, cookie: &Cookie, user: Option<&(String, String)>) -> bool {
    let cookie_ok = constant_time_eq(name.as_bytes(), COOKIE_USER.as_bytes())
        & constant_time_eq(password.as_bytes(), cookie.0.as_bytes());
    let user_ok = user.is_some_and(|(u, p)| {
        constant_time_eq(name.as_bytes(), u.as_bytes()) & constant_time_eq(password.as_bytes(), p.as_bytes())
    });
    cookie_ok | user_ok
}

/// Whether the request names this server in its `Host` header. Security: a page of another
/// site whose DNS name was rebound to this address sends that name; a node listening on
/// loopback answers only to loopback names, one listening on a given address to that address
/// and loopback names. A node listening on every interface cannot know its names and answers
/// any (its credentials still guard it). Clients that send no `Host` (not browsers) pass.
pub(crate) fn is_allowed_host(headers: &HeaderMap, bound: std::net::SocketAddr) -> bool {
    let Some(host) = headers.get(HOST) else { return true };
    let Ok(host) = host.to_str() else { return false };
    if bound.ip().is_unspecified() {
        return true;
    }
    // The name without its port: `[::1]:9334`, `127.0.0.1:9334`, `localhost`.
    let name = match host.rsplit_once(':') {
        Some((name, port)) if !name.is_empty() && port.chars().all(|c| c.is_ascii_digit()) && !name.ends_with(':') => {
            name
        }
        _ => host,
    };
    let name = name.trim_start_matches('[').trim_end_matches(']');
    if name.eq_ignore_ascii_case("localhost") {
        return true;
    }
    match name.parse::<std::net::IpAddr>() {
        Ok(ip) => ip.is_loopback() || ip == bound.ip(),
        Err(_) => false,
    }
}

/// Whether a browser made the request for a page of another origin: its `Origin` is not this
/// server's address (the `Host` it was asked at), or it says so in `Sec-Fetch-Site`. Clients
/// that are not browsers send neither header.
pub(crate) fn is_cross_origin(headers: &HeaderMap) -> bool {
    let text = |name| headers.get(name).map(|v: &axum::http::HeaderValue| v.to_str().unwrap_or("\u{0}"));
    if text("sec-fetch-site").is_some_and(|site| site == "cross-site") {
        return true;
    }
    match text(ORIGIN.as_str()) {
        None => false,
        Some(origin) => {
            let origin_host = origin.strip_prefix("http://").unwrap_or("\u{0}");
            text(HOST.as_str()).is_none_or(|host| !origin_host.eq_ignore_ascii_case(host))
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    fn headers(pairs: &[(&'static str, &'static str)]) -> HeaderMap {
        let mut map = HeaderMap::new();
        for (name, value) in pairs {
            map.insert(*name, HeaderValue::from_static(value));
        }
        map
    }

    #[test]
    fn only_requests_from_another_origin_are_cross_origin() {
        assert!(!is_cross_origin(&headers(&[("host", "127.0.0.1:29501")])), "curl and the CLI send no Origin");
        assert!(!is_cross_origin(&headers(&[("host", "127.0.0.1:29501"), ("origin", "http://127.0.0.1:29501")])));
        assert!(!is_cross_origin(&headers(&[("host", "127.0.0.1:29501"), ("sec-fetch-site", "same-origin")])));
        assert!(is_cross_origin(&headers(&[("host", "127.0.0.1:29501"), ("origin", "https://evil.example")])));
        assert!(is_cross_origin(&headers(&[("host", "127.0.0.1:29501"), ("origin", "http://127.0.0.1:8080")])));
        assert!(is_cross_origin(&headers(&[("host", "127.0.0.1:29501"), ("origin", "null")])), "a sandboxed page");
        assert!(is_cross_origin(&headers(&[("origin", "http://127.0.0.1:29501")])), "no Host to match");
        assert!(is_cross_origin(&headers(&[("host", "127.0.0.1:29501"), ("sec-fetch-site", "cross-site")])));
    }

    #[test]
    fn only_names_of_this_server_pass_the_host_check() {
        let loopback: std::net::SocketAddr = "127.0.0.1:29334".parse().unwrap();
        let host = |value: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(HOST, HeaderValue::from_str(value).unwrap());
            headers
        };
        for ok in ["127.0.0.1:29334", "localhost:29334", "LOCALHOST", "[::1]:29334", "127.0.0.1"] {
            assert!(super::is_allowed_host(&host(ok), loopback), "{ok}");
        }
        for refused in ["evil.example", "evil.example:29334", "192.168.1.5:29334", "127.0.0.1.evil.example"] {
            assert!(!super::is_allowed_host(&host(refused), loopback), "{refused}");
        }
        assert!(super::is_allowed_host(&HeaderMap::new(), loopback), "no Host: not a browser");
        let lan: std::net::SocketAddr = "192.168.1.5:29334".parse().unwrap();
        assert!(super::is_allowed_host(&host("192.168.1.5:29334"), lan));
        assert!(!super::is_allowed_host(&host("evil.example"), lan));
        let any: std::net::SocketAddr = "0.0.0.0:29334".parse().unwrap();
        assert!(super::is_allowed_host(&host("node.example"), any));
    }
}
