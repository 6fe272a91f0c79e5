//! The JSON-RPC 2.0 server: `POST /` on the node's RPC address, behind HTTP basic
//! authentication with the cookie in the data directory (Bitcoin Core's scheme).
//!
//! This crate turns requests into calls on the chain and wallet handles and their results
//! into JSON; it must never hold state of its own beyond the connection limits, and never
//! decide what is valid.

mod auth;
pub mod fuzzing;
mod listener;
mod live;
mod methods;
mod metrics;
mod params;
pub mod services;
mod web;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use peerchain_primitives::Network;
use serde_json::{Value, json};
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio_util::sync::CancellationToken;
use tracing::{debug, info};

pub use auth::{COOKIE_USER, Cookie, write_cookie};
pub use methods::{ChainReader, MAX_STATUS_WAIT_MS, METHODS, Method};
pub use services::{
    BookEntry, BookSummary, ContractService, EscrowEntry, EscrowRequest, LoanEntry, LoanOfferRequest, MadeOffers,
    MarketService, OfferRequest, Opened, Party, Relay, ServiceError,
};

/// The file service's types, where the node and older callers look for them.
pub mod files {
    pub use crate::services::{
        BoxFuture, Download, DownloadState, FileEntry, FileService, FileTotals, FoundFile, SearchVia,
    };
}

/// RPC settings.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub addr: SocketAddr,
    /// The largest request body, in bytes.
    pub max_body_bytes: usize,
    /// Requests handled at once; more wait.
    pub max_concurrent: usize,
    /// How long one request may take.
    pub timeout: Duration,
    /// An extra user and password, besides the cookie.
    pub user: Option<(String, String)>,
    /// Connections open at once, logged in or not; more wait to be accepted.
    pub max_connections: usize,
}

impl Config {
    /// Defaults on `addr`.
    pub fn on(addr: SocketAddr) -> Self {
        Self {
            addr,
            max_body_bytes: 16 << 20,
            max_concurrent: 64,
            timeout: Duration::from_secs(300),
            user: None,
            max_connections: 128,
        }
    }
}

/// What the methods act on.
pub struct Context {
    /// The chain.
    pub chain: peerchain_chain::Handle,
    /// The peer-to-peer network.
    pub net: peerchain_net::Handle,
    /// Which chain (devnet, testnet, ...).
    pub network: Network,
    /// The data directory.
    pub data_dir: PathBuf,
    /// Cancelled to stop the node (`node.stop`).
    pub shutdown: CancellationToken,
    /// The RPC address actually bound.
    pub rpc_addr: SocketAddr,
    /// The node's wallet (empty until one is created).
    pub wallet: peerchain_wallet::SharedWallet,
    /// Held while a payment is made, so that two never choose the same coins.
    pub wallet_sends: std::sync::Arc<tokio::sync::Mutex<()>>,
    /// File sharing.
    pub files: std::sync::Arc<dyn services::FileService>,
    /// Sending transactions to the network.
    pub relay: std::sync::Arc<dyn services::Relay>,
    /// The market: tokens, the order book, trades.
    pub market: std::sync::Arc<dyn services::MarketService>,
    /// Escrows and loans.
    pub contracts: std::sync::Arc<dyn services::ContractService>,
    /// The explorer's address index.
    pub addresses: std::sync::Arc<peerchain_store::AddressIndex>,
}

/// A JSON-RPC error: code, message and optional data.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message} (code {code})")]
pub struct RpcError {
    /// The JSON-RPC error code.
    pub code: i64,
    /// What went wrong, for people.
    pub message: String,
}

impl RpcError {
    /// The request is not JSON.
    pub const PARSE_ERROR: i64 = -32700;
    /// The JSON is not a JSON-RPC request.
    pub const INVALID_REQUEST: i64 = -32600;
    /// No such method.
    pub const METHOD_NOT_FOUND: i64 = -32601;
    /// Parameters missing or malformed.
    pub const INVALID_PARAMS: i64 = -32602;
    /// The node failed.
    pub const INTERNAL_ERROR: i64 = -32603;
    /// Not found: block, transaction, wallet (Bitcoin Core's -5).
    pub const NOT_FOUND: i64 = -5;
    /// A transaction or block was rejected (Bitcoin Core's -26).
    pub const REJECTED: i64 = -26;
    /// Not allowed on this network or in this state.
    pub const NOT_ALLOWED: i64 = -8;
    /// The wallet cannot pay (Bitcoin Core's -6).
    pub const INSUFFICIENT_FUNDS: i64 = -6;
    /// The wallet needs its passphrase (Bitcoin Core's -13).
    pub const UNLOCK_NEEDED: i64 = -13;
    /// There is no wallet (Bitcoin Core's -18).
    pub const NO_WALLET: i64 = -18;

    /// An error with `code` and `message`.
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self { code, message: message.into() }
    }

    /// Bad parameters.
    pub fn invalid_params(message: impl Into<String>) -> Self {
        Self::new(Self::INVALID_PARAMS, message)
    }

    /// The node failed.
    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(Self::INTERNAL_ERROR, message.to_string())
    }
}

struct Server {
    context: Arc<Context>,
    cookie: Cookie,
    user: Option<(String, String)>,
    permits: Semaphore,
    timeout: Duration,
    /// Failed logins allowed: a few at once, then one a second (see [`guard`]).
    failed_logins: std::sync::Mutex<peerchain_net::TokenBucket>,
    metrics: metrics::RpcMetrics,
    /// Browsers logged in through the login page.
    sessions: web::Sessions,
    /// The dashboard's live updates.
    live: Arc<live::Live>,
    /// Ends the dashboard's event streams when the server stops.
    cancel: CancellationToken,
}

/// Failed logins a second, and at once, before more are answered 429.
const FAILED_LOGINS: (f64, f64) = (1.0, 10.0);

/// Binds the RPC address. Returns the listener and the address actually bound (port 0 picks
/// a free one).
pub async fn bind(addr: SocketAddr) -> std::io::Result<(TcpListener, SocketAddr)> {
    let listener = TcpListener::bind(addr).await?;
    let local = listener.local_addr()?;
    Ok((listener, local))
}

/// Serves JSON-RPC on `listener` until `cancel`.
pub async fn serve(
    listener: TcpListener,
    config: Config,
    cookie: Cookie,
    context: Arc<Context>,
    cancel: CancellationToken,
) -> std::io::Result<()> {
    let server = Arc::new(Server {
        context,
        cookie,
        user: config.user.clone(),
        permits: Semaphore::new(config.max_concurrent),
        timeout: config.timeout,
        failed_logins: std::sync::Mutex::new(peerchain_net::TokenBucket::full(FAILED_LOGINS.0, FAILED_LOGINS.1)),
        metrics: metrics::RpcMetrics::new(),
        sessions: web::Sessions::default(),
        live: Arc::new(live::Live::new()),
        cancel: cancel.clone(),
    });
    let sampler = live::Sampler { context: server.context.clone(), live: server.live.clone() };
    let app = Router::new()
        .route("/", post(handle_post).get(dashboard))
        .route("/metrics", get(metrics_page))
        .route("/login", get(login_page).post(login))
        .route("/logout", post(logout))
        .route("/events", get(events))
        .route("/assets/{name}", get(asset))
        .layer(DefaultBodyLimit::max(config.max_body_bytes))
        // An upload streams to disk: its own limit, checked as it is read.
        .route("/upload", post(upload).layer(DefaultBodyLimit::disable()))
        .layer(axum::middleware::from_fn_with_state(server.clone(), guard))
        .with_state(server);
    let local = listener.local_addr()?;
    info!(addr = %local, "JSON-RPC listening");
    let listener = listener::Limited::new(listener, config.max_connections);
    let serving = axum::serve(listener, app).with_graceful_shutdown(cancel.clone().cancelled_owned());
    let (served, ()) = tokio::join!(serving.into_future(), sampler.run(cancel));
    served
}

/// Runs before any handler, so before any body is read. Security: a request for another
/// host name (a web page that rebinds its DNS name to this address) is refused with 403; one
/// without valid credentials gets 401 with nothing of its body read; and failed logins are
/// throttled (429 beyond [`FAILED_LOGINS`]), so that a guessing program, or a page in a
/// browser, tries a few passwords a second at most.
async fn guard(
    State(server): State<Arc<Server>>,
    request: axum::extract::Request,
    next: axum::middleware::Next,
) -> Response {
    let headers = request.headers();
    if !auth::is_allowed_host(headers, server.context.rpc_addr) {
        return (StatusCode::FORBIDDEN, "this node answers only to its own address (Host header refused)\n")
            .into_response();
    }
    // Security: a browser holding a login (a session cookie, or basic-auth credentials it
    // remembers) sends it with any request to this address, also one a page of another site
    // makes; every request that changes something (each is a POST: calls, logins, logouts,
    // uploads) is refused when it carries another site's origin, also a login of the
    // attacker's choosing.
    if request.method() != axum::http::Method::GET && auth::is_cross_origin(headers) {
        return (StatusCode::FORBIDDEN, "cross-origin requests are refused\n").into_response();
    }
    // The login page is the one thing served to anyone (`login` throttles what it is sent).
    if request.uri().path() == "/login" {
        return next.run(request).await;
    }
    let logged_in = server.sessions.is_logged_in(headers);
    if !logged_in && !auth::is_authorised(headers, &server.cookie, server.user.as_ref()) {
        // A request without credentials guesses nothing (a browser asks for the challenge so).
        let guessed = headers.contains_key(header::AUTHORIZATION);
        let allowed =
            !guessed || server.failed_logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).try_take(1.0);
        if !allowed {
            return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "too many failed logins\n")
                .into_response();
        }
        // A browser opening the dashboard is sent to the login page; any other request is
        // asked for basic auth, as JSON-RPC clients expect.
        if request.method() == axum::http::Method::GET && request.uri().path() == "/" && !guessed {
            return web::see_other("/login", None);
        }
        let body =
            if request.method() == axum::http::Method::GET { DASHBOARD_LOGIN } else { "authentication required\n" };
        // A page's own requests get no challenge, which would make the browser prompt.
        if headers.contains_key("sec-fetch-mode") && !guessed {
            return (StatusCode::UNAUTHORIZED, body).into_response();
        }
        return unauthorised(body);
    }
    next.run(request).await
}

/// `GET /login`: the login form.
async fn login_page() -> Response {
    web::login_page(None)
}

/// `POST /login`: a session for the right user and password (the cookie's, or `[rpc] user`'s),
/// throttled with the other failed logins.
async fn login(State(server): State<Arc<Server>>, body: Bytes) -> Response {
    let Some((user, password)) = web::login_form(&body) else {
        return web::login_page(Some("Enter a user and a password."));
    };
    if !auth::credentials_match(&user, &password, &server.cookie, server.user.as_ref()) {
        let allowed = server.failed_logins.lock().unwrap_or_else(std::sync::PoisonError::into_inner).try_take(1.0);
        if !allowed {
            return (StatusCode::TOO_MANY_REQUESTS, [(header::RETRY_AFTER, "1")], "too many failed logins\n")
                .into_response();
        }
        return web::login_page(Some("Wrong user or password."));
    }
    let token = server.sessions.start();
    web::see_other("/", Some(web::session_cookie(&token)))
}

/// `POST /logout`: ends the browser's session.
async fn logout(State(server): State<Arc<Server>>, headers: HeaderMap) -> Response {
    server.sessions.end(&headers);
    web::see_other("/login", Some(web::expired_cookie()))
}

/// `GET /events`: the dashboard's live updates (server-sent events).
async fn events(State(server): State<Arc<Server>>) -> Response {
    let Ok(permit) = server.live.streams.clone().try_acquire_owned() else {
        return (StatusCode::SERVICE_UNAVAILABLE, [(header::RETRY_AFTER, "5")], "too many dashboards open\n")
            .into_response();
    };
    live::stream(&server.live, permit, server.cancel.clone()).into_response()
}

/// `GET /assets/<name>`: a script or style the dashboard bundles.
async fn asset(axum::extract::Path(name): axum::extract::Path<String>) -> Response {
    web::asset_response(&name)
}

/// `POST /upload?name=<file name>`: the body is a file to share; answers its entry as
/// `file.add` does.
async fn upload(
    State(server): State<Arc<Server>>,
    headers: HeaderMap,
    axum::extract::RawQuery(query): axum::extract::RawQuery,
    body: axum::body::Body,
) -> Response {
    let name = form_urlencoded::parse(query.unwrap_or_default().as_bytes())
        .find(|(key, _)| key == "name")
        .map(|(_, value)| value.into_owned())
        .unwrap_or_default();
    let length = headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse().ok());
    let (folder, path) = match web::receive_upload(&server.context.data_dir, &name, length, body).await {
        Ok(received) => received,
        Err(e) => return (e.status(), format!("{e}\n")).into_response(),
    };
    let added = server.context.files.add(path, Vec::new()).await;
    // The store holds its own copy now.
    let _ = tokio::fs::remove_dir_all(&folder).await;
    match added {
        Ok(entry) => reply(methods::entry_json(&entry)),
        Err(e) => (StatusCode::BAD_REQUEST, format!("cannot share {name}: {e}\n")).into_response(),
    }
}

/// The web dashboard: one page, behind the same authentication as the API it calls. A browser
/// without a session is sent to the login page, which asks for the user and password (the
/// cookie's, or `[rpc] user`'s) that `peerchain dashboard` prints.
async fn dashboard() -> Response {
    // Security: no other site may frame it, and it loads nothing from elsewhere (its charts
    // and QR codes come from scripts the node serves).
    let policy = "default-src 'none'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; \
                  connect-src 'self'; form-action 'self'; frame-ancestors 'none'";
    (web::page_headers(policy), DASHBOARD).into_response()
}

/// `GET /metrics` (behind the login, as every route): the Prometheus text format.
async fn metrics_page(State(server): State<Arc<Server>>) -> Response {
    let text = metrics::render(&server.context, &server.metrics).await;
    ([(header::CONTENT_TYPE, "text/plain; version=0.0.4; charset=utf-8")], text).into_response()
}

/// The dashboard page (static: everything it shows comes from the API).
const DASHBOARD: &str = include_str!("../web/dashboard.html");
/// What a browser shows when the login is refused or cancelled.
const DASHBOARD_LOGIN: &str = "peerchain: log in with the user and password of `peerchain dashboard` \
(the RPC cookie, or the [rpc] user of config.toml), then reload.\n";

fn unauthorised(body: &'static str) -> Response {
    (StatusCode::UNAUTHORIZED, [(header::WWW_AUTHENTICATE, "Basic realm=\"peerchain\"")], body).into_response()
}

/// `POST /`: JSON-RPC. Security: `guard` authenticated the caller before the body was read and
/// refused other sites' pages.
async fn handle_post(State(server): State<Arc<Server>>, body: Bytes) -> Response {
    let Ok(_permit) = server.permits.acquire().await else {
        return StatusCode::SERVICE_UNAVAILABLE.into_response();
    };
    let request: Value = match serde_json::from_slice(&body) {
        Ok(value) => value,
        Err(e) => {
            return reply(error_response(
                Value::Null,
                RpcError::new(RpcError::PARSE_ERROR, format!("parse error: {e}")),
            ));
        }
    };
    let response = match request {
        Value::Array(batch) if batch.is_empty() => {
            error_response(Value::Null, RpcError::new(RpcError::INVALID_REQUEST, "empty batch"))
        }
        Value::Array(batch) => {
            let mut responses = Vec::with_capacity(batch.len());
            for item in batch {
                if let Some(response) = server.call(item).await {
                    responses.push(response);
                }
            }
            Value::Array(responses)
        }
        single => match server.call(single).await {
            Some(response) => response,
            None => return StatusCode::NO_CONTENT.into_response(),
        },
    };
    reply(response)
}

fn reply(body: Value) -> Response {
    ([(header::CONTENT_TYPE, "application/json")], body.to_string()).into_response()
}

fn error_response(id: Value, error: RpcError) -> Value {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": error.code, "message": error.message } })
}

impl Server {
    /// Handles one request object; `None` for a notification (no id), which gets no answer.
    async fn call(&self, request: Value) -> Option<Value> {
        let Value::Object(mut object) = request else {
            return Some(error_response(
                Value::Null,
                RpcError::new(RpcError::INVALID_REQUEST, "a request must be an object"),
            ));
        };
        let id = object.remove("id");
        let Some(Value::String(method)) = object.remove("method") else {
            return Some(error_response(
                id.unwrap_or(Value::Null),
                RpcError::new(RpcError::INVALID_REQUEST, "missing method"),
            ));
        };
        let params = object.remove("params").unwrap_or(Value::Null);
        debug!(%method, "rpc call");
        let started = std::time::Instant::now();
        let result = match tokio::time::timeout(self.timeout, methods::call(&self.context, &method, params)).await {
            Ok(result) => result,
            Err(_) => Err(RpcError::internal(format!("{method} timed out after {:?}", self.timeout))),
        };
        self.metrics.record(&method, result.is_ok(), started.elapsed());
        let id = id?;
        Some(match result {
            Ok(value) => json!({ "jsonrpc": "2.0", "id": id, "result": value }),
            Err(error) => error_response(id, error),
        })
    }
}
