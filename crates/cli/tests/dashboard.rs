//! The web dashboard: served at the RPC address behind the same login, and every API method
//! the page calls answers, also from the page's own origin; requests from other origins are
//! refused.

mod support;

use serde_json::{Value, json};
use support::{TestNode, basic_auth, http_agent};

fn basic(user: &str, password: &str) -> String {
    basic_auth(&format!("{user}:{password}"))
}

/// The API methods the page reads with on each refresh: each `rpc("<method>"` in its script.
/// (Its forms' methods, called through `act(`, need parameters a user types: the browser test,
/// tests/browser/dashboard.mjs, fills the forms.)
fn methods_called(page: &str) -> Vec<String> {
    page.split("rpc(\"").skip(1).filter_map(|rest| rest.split_once('"')).map(|(method, _)| method.to_owned()).collect()
}

#[test]
fn the_dashboard_is_served_behind_the_login_and_every_call_it_makes_answers() {
    let mut node = TestNode::start("regtest", &[]);
    node.json(&["wallet", "create"]);
    node.json(&["chain", "generate", "3"]);
    // Outside the data directory, which the node refuses to share.
    let files = tempfile::tempdir().unwrap();
    let shared = files.path().join("notes.txt");
    std::fs::write(&shared, b"dashboard test").unwrap();
    node.json(&["file", "add", shared.to_str().unwrap()]);

    // `peerchain dashboard` tells where it is and how to log in.
    let login = node.json(&["dashboard"]);
    let url = login["url"].as_str().unwrap().to_owned();
    assert_eq!(url, node.rpc_url());
    let (user, password) = node.cookie().trim().split_once(':').map(|(u, p)| (u.to_owned(), p.to_owned())).unwrap();
    assert_eq!((login["user"].as_str().unwrap(), login["password"].as_str().unwrap()), (&*user, &*password));

    let agent = http_agent();
    // Without the login, or with a wrong one, the browser is asked for it and gets no page.
    for authorization in [None, Some(basic(&user, "wrong"))] {
        let mut request = agent.get(&url);
        if let Some(value) = &authorization {
            request = request.header("Authorization", value);
        }
        let mut response = request.call().unwrap();
        assert_eq!(response.status(), 401);
        assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
        let body = response.body_mut().read_to_string().unwrap();
        assert!(body.contains("peerchain dashboard") && !body.contains("<script"), "{body}");
    }

    // Logged in: the page, which may not be framed or load anything from elsewhere.
    let authorization = basic(&user, &password);
    let mut response = agent.get(&url).header("Authorization", &authorization).call().unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("connect-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    let page = response.body_mut().read_to_string().unwrap();
    assert!(page.contains("<title>peerchain</title>"));

    // Each method the page calls answers with a result when the page's origin asks.
    let origin = url.trim_end_matches('/').to_owned();
    let methods = methods_called(&page);
    assert!(methods.len() >= 6, "{methods:?}");
    for method in &methods {
        let params = if method == "wallet.history" { json!({ "limit": 10 }) } else { json!({}) };
        let body = json!({ "jsonrpc": "2.0", "id": 1, "method": method, "params": params });
        let mut response = agent
            .post(&url)
            .header("Authorization", &authorization)
            .header("Origin", &origin)
            .header("Content-Type", "application/json")
            .send(body.to_string())
            .unwrap();
        assert_eq!(response.status(), 200, "{method}");
        let answer: Value = serde_json::from_str(&response.body_mut().read_to_string().unwrap()).unwrap();
        assert!(answer["error"].is_null() && !answer["result"].is_null(), "{method}: {answer}");
    }

    // A page of another site, in a browser that holds the login, is refused and changes nothing.
    let generate = json!({ "jsonrpc": "2.0", "id": 1, "method": "chain.generate", "params": { "blocks": 5 } });
    for (header, value) in [("Origin", "https://evil.example"), ("Sec-Fetch-Site", "cross-site")] {
        let response = agent
            .post(&url)
            .header("Authorization", &authorization)
            .header(header, value)
            .header("Content-Type", "text/plain")
            .send(generate.to_string())
            .unwrap();
        assert_eq!(response.status(), 403, "{header}: {value}");
    }
    assert_eq!(node.height(), 3);
    node.stop();
}
