//! What the dashboard needs beyond JSON-RPC: a login page and sessions (instead of the
//! browser's basic-auth prompt), logging out, the scripts it bundles, and sharing a file
//! uploaded from the browser.
//!
//! Security: a session is a 256-bit random token in an `HttpOnly`, `SameSite=Strict` cookie;
//! the node keeps only its SHA-256, at most [`MAX_SESSIONS`] of them, each for
//! [`SESSION_LIFETIME`]. Logins are throttled with the other failed logins, and every
//! request that changes something is refused from another origin.

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use axum::body::{Body, Bytes};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use futures_util::StreamExt;
use rand::RngCore;
use sha2::{Digest, Sha256};
use tokio::io::AsyncWriteExt;

/// The session cookie's name.
pub(crate) const SESSION_COOKIE: &str = "peerchain_session";
/// How long a login lasts.
pub(crate) const SESSION_LIFETIME: Duration = Duration::from_secs(12 * 3600);
/// Sessions kept at once; a new login past it ends the oldest.
pub(crate) const MAX_SESSIONS: usize = 64;
/// The largest file the dashboard uploads.
pub(crate) const MAX_UPLOAD_BYTES: u64 = 64 << 30;
/// Where uploads are written before they are shared (removed once they are).
const UPLOADS_DIR: &str = "uploads";

/// The logged-in browsers: the SHA-256 of each session token, and when it ends.
#[derive(Default)]
pub(crate) struct Sessions(Mutex<HashMap<[u8; 32], Instant>>);

impl Sessions {
    /// Starts a session; returns its token.
    pub(crate) fn start(&self) -> String {
        let mut token = [0u8; 32];
        rand::rngs::OsRng.fill_bytes(&mut token);
        let token = hex::encode(token);
        let now = Instant::now();
        let mut sessions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.retain(|_, ends| *ends > now);
        if sessions.len() >= MAX_SESSIONS
            && let Some(oldest) = sessions.iter().min_by_key(|(_, ends)| **ends).map(|(key, _)| *key)
        {
            sessions.remove(&oldest);
        }
        sessions.insert(Sha256::digest(token.as_bytes()).into(), now + SESSION_LIFETIME);
        token
    }

    /// Whether `headers` carry the cookie of a live session.
    pub(crate) fn is_logged_in(&self, headers: &HeaderMap) -> bool {
        let Some(token) = session_token(headers) else { return false };
        let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
        let sessions = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        sessions.get(&key).is_some_and(|ends| *ends > Instant::now())
    }

    /// Ends the session of `headers`, if any.
    pub(crate) fn end(&self, headers: &HeaderMap) {
        if let Some(token) = session_token(headers) {
            let key: [u8; 32] = Sha256::digest(token.as_bytes()).into();
            self.0.lock().unwrap_or_else(PoisonError::into_inner).remove(&key);
        }
    }
}

/// The session token in the `Cookie` headers.
fn session_token(headers: &HeaderMap) -> Option<&str> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|value| value.split(';'))
        .find_map(|pair| pair.trim().strip_prefix(SESSION_COOKIE)?.strip_prefix('='))
}

/// The cookie that holds `token` for the session's lifetime.
pub(crate) fn session_cookie(token: &str) -> String {
    format!("{SESSION_COOKIE}={token}; HttpOnly; SameSite=Strict; Path=/; Max-Age={}", SESSION_LIFETIME.as_secs())
}

/// The cookie that ends a session in the browser.
pub(crate) fn expired_cookie() -> String {
    format!("{SESSION_COOKIE}=; HttpOnly; SameSite=Strict; Path=/; Max-Age=0")
}

/// The user and password of a submitted login form.
pub(crate) fn login_form(body: &[u8]) -> Option<(String, String)> {
    let (mut user, mut password) = (None, None);
    for (name, value) in form_urlencoded::parse(body) {
        match &*name {
            "user" => user = Some(value.into_owned()),
            "password" => password = Some(value.into_owned()),
            _ => {}
        }
    }
    Some((user?, password?))
}

/// The login page; `failed` shows why the last attempt did not log in.
pub(crate) fn login_page(failed: Option<&str>) -> Response {
    let message = failed.map(|m| format!("<p class=\"error\">{}</p>", html_escape(m))).unwrap_or_default();
    let status = if failed.is_some() { StatusCode::UNAUTHORIZED } else { StatusCode::OK };
    (
        status,
        page_headers("default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; frame-ancestors 'none'"),
        LOGIN.replace("<!--message-->", &message),
    )
        .into_response()
}

/// The headers of every page: never cached, never framed, nothing loaded from elsewhere.
pub(crate) fn page_headers(policy: &'static str) -> [(header::HeaderName, &'static str); 4] {
    [
        (header::CONTENT_TYPE, "text/html; charset=utf-8"),
        (header::CACHE_CONTROL, "no-store"),
        (header::X_FRAME_OPTIONS, "DENY"),
        (header::CONTENT_SECURITY_POLICY, policy),
    ]
}

fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A redirect a browser follows with a GET.
pub(crate) fn see_other(to: &'static str, cookie: Option<String>) -> Response {
    let mut response = (StatusCode::SEE_OTHER, [(header::LOCATION, to)]).into_response();
    if let Some(cookie) = cookie
        && let Ok(value) = header::HeaderValue::from_str(&cookie)
    {
        response.headers_mut().insert(header::SET_COOKIE, value);
    }
    response
}

const LOGIN: &str = include_str!("../web/login.html");

/// The dashboard's own scripts, and those it bundles from npm packages pinned in
/// `crates/rpc/web/package.json` (see `crates/rpc/web/vendor.sh`): served from the node, so
/// that the page loads nothing from elsewhere.
pub(crate) fn asset(name: &str) -> Option<(&'static str, &'static str)> {
    Some(match name {
        "uplot.js" => ("text/javascript; charset=utf-8", include_str!("../web/vendor/uPlot.iife.min.js")),
        "uplot.css" => ("text/css; charset=utf-8", include_str!("../web/vendor/uPlot.min.css")),
        "qrcode.js" => ("text/javascript; charset=utf-8", include_str!("../web/vendor/qrcode.js")),
        "dashboard.js" => ("text/javascript; charset=utf-8", include_str!("../web/dashboard.js")),
        "explorer.js" => ("text/javascript; charset=utf-8", include_str!("../web/explorer.js")),
        _ => return None,
    })
}

/// A served asset, or 404.
pub(crate) fn asset_response(name: &str) -> Response {
    match asset(name) {
        Some((kind, body)) => {
            ([(header::CONTENT_TYPE, kind), (header::CACHE_CONTROL, "private, max-age=3600")], body).into_response()
        }
        None => (StatusCode::NOT_FOUND, "no such asset\n").into_response(),
    }
}

/// Why an upload failed.
#[derive(Debug, thiserror::Error)]
pub(crate) enum UploadError {
    #[error("the file name must be a plain name of 1 to 255 bytes, without `/`, `\\` or control characters")]
    BadName,
    #[error("an upload needs its length (Content-Length)")]
    NoLength,
    #[error("the file is larger than the upload limit of {0} bytes")]
    TooLarge(u64),
    #[error("the upload ended after {received} of {expected} bytes")]
    Truncated { received: u64, expected: u64 },
    #[error("cannot write the upload to {path}: {source}")]
    Write { path: PathBuf, source: std::io::Error },
}

impl UploadError {
    pub(crate) fn status(&self) -> StatusCode {
        match self {
            UploadError::BadName | UploadError::Truncated { .. } => StatusCode::BAD_REQUEST,
            UploadError::NoLength => StatusCode::LENGTH_REQUIRED,
            UploadError::TooLarge(_) => StatusCode::PAYLOAD_TOO_LARGE,
            UploadError::Write { .. } => StatusCode::INSUFFICIENT_STORAGE,
        }
    }
}

/// Whether `name` is a file name the node may write: no path, nothing hidden by a control
/// character, not `.` or `..`.
pub(crate) fn is_plain_name(name: &str) -> bool {
    (1..=255).contains(&name.len())
        && name != "."
        && name != ".."
        && !name.chars().any(|c| c == '/' || c == '\\' || c.is_control())
}

/// Writes an uploaded body to a fresh folder of the data directory's `uploads/`, named
/// `name`; returns the folder (which the caller removes) and the file. A body that ends
/// early, runs past its length or cannot be written leaves nothing behind.
pub(crate) async fn receive_upload(
    data_dir: &Path,
    name: &str,
    length: Option<u64>,
    body: Body,
) -> Result<(PathBuf, PathBuf), UploadError> {
    if !is_plain_name(name) {
        return Err(UploadError::BadName);
    }
    let expected = length.ok_or(UploadError::NoLength)?;
    if expected > MAX_UPLOAD_BYTES {
        return Err(UploadError::TooLarge(MAX_UPLOAD_BYTES));
    }
    let mut folder_name = [0u8; 8];
    rand::rngs::OsRng.fill_bytes(&mut folder_name);
    let folder = data_dir.join(UPLOADS_DIR).join(hex::encode(folder_name));
    let path = folder.join(name);
    let result = write_body(&folder, &path, expected, body).await;
    if result.is_err() {
        let _ = tokio::fs::remove_dir_all(&folder).await;
    }
    result.map(|()| (folder, path))
}

async fn write_body(folder: &Path, path: &Path, expected: u64, body: Body) -> Result<(), UploadError> {
    let write_error = |source| UploadError::Write { path: path.to_owned(), source };
    tokio::fs::create_dir_all(folder).await.map_err(write_error)?;
    let mut file = tokio::fs::File::create(path).await.map_err(write_error)?;
    let mut received = 0u64;
    let mut chunks = body.into_data_stream();
    while let Some(chunk) = chunks.next().await {
        let chunk: Bytes = chunk.map_err(|_| UploadError::Truncated { received, expected })?;
        received += chunk.len() as u64;
        if received > expected {
            return Err(UploadError::Truncated { received, expected });
        }
        file.write_all(&chunk).await.map_err(write_error)?;
    }
    if received != expected {
        return Err(UploadError::Truncated { received, expected });
    }
    file.flush().await.map_err(write_error)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn a_session_lasts_until_it_is_ended_and_only_its_token_opens_it() {
        let sessions = Sessions::default();
        let token = sessions.start();
        let with = |cookie: &str| {
            let mut headers = HeaderMap::new();
            headers.insert(header::COOKIE, HeaderValue::from_str(cookie).unwrap());
            headers
        };
        assert!(sessions.is_logged_in(&with(&format!("theme=dark; {SESSION_COOKIE}={token}"))));
        assert!(!sessions.is_logged_in(&with(&format!("{SESSION_COOKIE}={}", "0".repeat(64)))));
        assert!(!sessions.is_logged_in(&with(&format!("x{SESSION_COOKIE}={token}"))), "another cookie's value");
        assert!(!sessions.is_logged_in(&HeaderMap::new()));
        sessions.end(&with(&format!("{SESSION_COOKIE}={token}")));
        assert!(!sessions.is_logged_in(&with(&format!("{SESSION_COOKIE}={token}"))), "logged out");
    }

    #[test]
    fn sessions_are_bounded_and_the_oldest_goes_first() {
        let sessions = Sessions::default();
        let first = sessions.start();
        for _ in 0..MAX_SESSIONS {
            sessions.start();
        }
        let mut headers = HeaderMap::new();
        headers.insert(header::COOKIE, HeaderValue::from_str(&format!("{SESSION_COOKIE}={first}")).unwrap());
        assert!(!sessions.is_logged_in(&headers));
        assert_eq!(sessions.0.lock().unwrap().len(), MAX_SESSIONS);
    }

    #[test]
    fn upload_names_are_plain_file_names() {
        for ok in ["notes.txt", "holiday photo (1).jpg", "ünïcode.md", ".profile"] {
            assert!(is_plain_name(ok), "{ok}");
        }
        for bad in ["", ".", "..", "a/b", "..\\x", "line\nbreak", &"x".repeat(256)] {
            assert!(!is_plain_name(bad), "{bad:?}");
        }
    }

    #[test]
    fn login_forms_are_decoded() {
        assert_eq!(login_form(b"user=__cookie__&password=a%2Bb+c"), Some(("__cookie__".into(), "a+b c".into())));
        assert_eq!(login_form(b"user=alice"), None);
    }
}
