//! The web dashboard: served at the RPC address behind the same login (basic auth, or a
//! session from its login page, ended by logging out), and every API method its scripts call
//! answers, also from the page's own origin; its live updates stream; a file uploaded from
//! the browser is shared; requests from other origins are refused.

mod support;

use serde_json::{Value, json};
use support::{TestNode, basic_auth};

fn basic(user: &str, password: &str) -> String {
    basic_auth(&format!("{user}:{password}"))
}

/// The API methods the page reads with: each `rpc("<method>"` in its scripts. (Its forms'
/// methods, called through `act(`, need parameters a user types: the browser test,
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

    let agent = ureq::Agent::config_builder()
        .http_status_as_error(false)
        .max_redirects(0)
        .timeout_global(Some(std::time::Duration::from_secs(60)))
        .build()
        .new_agent();
    // Without a login a browser is sent to the login page, which carries no script; a wrong
    // basic-auth login is refused with the challenge JSON-RPC clients expect.
    let response = agent.get(&url).call().unwrap();
    assert_eq!(response.status(), 303);
    assert_eq!(response.headers()["location"], "/login");
    let mut response = agent.get(&format!("{url}login")).call().unwrap();
    assert_eq!(response.status(), 200);
    let login_page = response.body_mut().read_to_string().unwrap();
    assert!(login_page.contains("name=\"password\"") && !login_page.contains("<script"), "{login_page}");
    let mut response = agent.get(&url).header("Authorization", basic(&user, "wrong")).call().unwrap();
    assert_eq!(response.status(), 401);
    assert!(response.headers()["www-authenticate"].to_str().unwrap().starts_with("Basic"));
    assert!(!response.body_mut().read_to_string().unwrap().contains("<script"));

    // The login form: a wrong password shows the form again with why; the right one starts a
    // session held in an HttpOnly, SameSite=Strict cookie.
    let form = |password: &str| format!("user={}&password={}", user, password);
    let post_form = |body: String| {
        agent
            .post(&format!("{url}login"))
            .header("Content-Type", "application/x-www-form-urlencoded")
            .send(body)
            .unwrap()
    };
    let mut refused = post_form(form("wrong"));
    assert_eq!(refused.status(), 401);
    assert!(refused.body_mut().read_to_string().unwrap().contains("Wrong user or password"));
    assert!(refused.headers().get("set-cookie").is_none());
    let accepted = post_form(form(&password));
    assert_eq!(accepted.status(), 303);
    assert_eq!(accepted.headers()["location"], "/");
    let set_cookie = accepted.headers()["set-cookie"].to_str().unwrap().to_owned();
    assert!(set_cookie.contains("HttpOnly") && set_cookie.contains("SameSite=Strict"), "{set_cookie}");
    let session = set_cookie.split(';').next().unwrap().to_owned();
    // Another site cannot log a browser in.
    let forged = agent
        .post(&format!("{url}login"))
        .header("Origin", "https://evil.example")
        .header("Content-Type", "application/x-www-form-urlencoded")
        .send(form(&password))
        .unwrap();
    assert_eq!(forged.status(), 403);

    // Logged in: the page, which may not be framed, runs only the node's own scripts and loads
    // nothing from elsewhere.
    let mut response = agent.get(&url).header("Cookie", &session).call().unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers()["content-type"].to_str().unwrap().starts_with("text/html"));
    let policy = response.headers()["content-security-policy"].to_str().unwrap().to_owned();
    assert!(policy.contains("connect-src 'self'") && policy.contains("frame-ancestors 'none'"), "{policy}");
    assert!(policy.contains("script-src 'self';"), "no inline script: {policy}");
    let page = response.body_mut().read_to_string().unwrap();
    assert!(page.contains("<title>peerchain</title>"));
    assert!(!page.contains("https://") && !page.contains("http://"), "nothing from elsewhere");
    let mut scripts = String::new();
    for script in page.split("<script src=\"").skip(1).filter_map(|rest| rest.split_once('"')).map(|(src, _)| src) {
        let mut response =
            agent.get(&format!("{}{script}", url.trim_end_matches('/'))).header("Cookie", &session).call().unwrap();
        assert_eq!(response.status(), 200, "{script}");
        scripts.push_str(&response.body_mut().read_to_string().unwrap());
    }
    let authorization = basic(&user, &password);

    // Each method the page calls answers with a result when the page's origin asks.
    let origin = url.trim_end_matches('/').to_owned();
    let coinbase = node.json(&["chain", "block", "1"])["tx"][0].clone();
    let methods = methods_called(&scripts);
    assert!(methods.len() >= 10, "{methods:?}");
    for method in &methods {
        let params = match method.as_str() {
            "wallet.history" => json!({ "limit": 10 }),
            "chain.block" => json!({ "block": 1 }),
            "chain.tx" => json!({ "txid": coinbase["txid"] }),
            "chain.address" => json!({ "address": coinbase["outputs"][0]["lock"]["address"] }),
            _ => json!({}),
        };
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

    // Live updates: the samples kept so far, then each new one, pushed by the node.
    let mut events = agent.get(&format!("{url}events")).header("Cookie", &session).call().unwrap();
    assert_eq!(events.status(), 200);
    assert!(events.headers()["content-type"].to_str().unwrap().starts_with("text/event-stream"));
    let mut reader = std::io::BufReader::new(events.body_mut().as_reader());
    let mut names = Vec::new();
    while names.iter().filter(|name: &&String| *name == "sample").count() < 1 {
        let mut line = String::new();
        std::io::BufRead::read_line(&mut reader, &mut line).unwrap();
        if let Some(name) = line.strip_prefix("event: ") {
            names.push(name.trim().to_owned());
        }
        if let Some(data) = line.strip_prefix("data: ")
            && names.last().is_some_and(|n| n == "sample")
        {
            let sample: Value = serde_json::from_str(data).unwrap();
            assert_eq!(sample["height"], 3, "{sample}");
        }
    }
    assert_eq!(names[0], "history", "{names:?}");
    drop(reader);

    // A file uploaded from the browser is shared as `file add` shares it; a bad name, or a page
    // of another site, is refused and shares nothing.
    let upload = |name: &str, origin: Option<&str>| {
        let mut request = agent.post(&format!("{url}upload?name={name}")).header("Cookie", &session);
        if let Some(origin) = origin {
            request = request.header("Origin", origin);
        }
        request.send(&b"uploaded from a browser"[..]).unwrap()
    };
    let mut shared = upload("from%20the%20browser.txt", Some(&origin));
    assert_eq!(shared.status(), 200);
    let entry: Value = serde_json::from_str(&shared.body_mut().read_to_string().unwrap()).unwrap();
    assert_eq!((entry["name"].as_str(), entry["size"].as_u64()), (Some("from the browser.txt"), Some(23)));
    let same = files.path().join("same.txt");
    std::fs::write(&same, b"uploaded from a browser").unwrap();
    assert_eq!(node.json(&["file", "add", same.to_str().unwrap()])["id"], entry["id"], "the same content id");
    assert_eq!(upload("..%2F..%2Fescape", None).status(), 400);
    assert_eq!(upload("elsewhere.txt", Some("https://evil.example")).status(), 403);
    let listed = node.json(&["file", "list"]);
    assert!(!listed.as_array().unwrap().iter().any(|f| f["name"] == "elsewhere.txt" || f["name"] == "escape"));
    let leftovers = std::fs::read_dir(node.path().join("uploads")).map(|d| d.count()).unwrap_or(0);
    assert_eq!(leftovers, 0, "uploads are removed once shared");

    // Logging out ends the session: the page sends the browser to the login page again, and
    // the API refuses the cookie.
    let out = agent.post(&format!("{url}logout")).header("Cookie", &session).send_empty().unwrap();
    assert_eq!(out.status(), 303);
    assert!(out.headers()["set-cookie"].to_str().unwrap().contains("Max-Age=0"));
    assert_eq!(agent.get(&url).header("Cookie", &session).call().unwrap().status(), 303);
    let info = json!({ "jsonrpc": "2.0", "id": 1, "method": "chain.info" }).to_string();
    assert_eq!(agent.post(&url).header("Cookie", &session).send(info).unwrap().status(), 401);

    // A dashboard left open does not hold the node up when it stops.
    let open = agent.get(&format!("{url}events")).header("Authorization", &authorization).call().unwrap();
    assert_eq!(open.status(), 200);
    node.stop();
    drop(open);
}
