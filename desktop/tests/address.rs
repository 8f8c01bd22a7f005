//! The server-address step against real sockets: plain HTTP only when typed, and a
//! redirect (to HTTPS, to another host, to a real ChatApp server elsewhere) reported, never
//! followed into the address the app keeps, which is what its password and token go to.

mod support;

use std::path::Path;

use chatapp_desktop::session::Session;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

/// A server that answers every request with a redirect to `location`; returns its address
/// and the task (aborted, so its socket closed, when the test ends).
async fn redirecting(location: String) -> (String, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("addr");
    let task = tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let location = location.clone();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let answer = format!(
                    "HTTP/1.1 301 Moved Permanently\r\nLocation: {location}\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                );
                let _ = socket.write_all(answer.as_bytes()).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    (format!("http://{addr}"), task)
}

fn kept(config_dir: &Path) -> Option<String> {
    let bytes = std::fs::read(config_dir.join("config.json")).ok()?;
    let v: serde_json::Value = serde_json::from_slice(&bytes).ok()?;
    v["server"].as_str().map(str::to_owned)
}

#[tokio::test]
async fn a_redirect_is_reported_and_nothing_is_kept() {
    let server = support::start_server().await;
    let real = server.base.clone();
    let config = tempfile::tempdir().expect("config dir");
    let session = Session::load(config.path().to_path_buf());

    // A front that sends every request on to the real ChatApp server: following it would
    // pass the health check and keep the front's address.
    let (front, task) = redirecting(format!("{real}/healthz")).await;
    let err = session.set_server(&front).await.expect_err("refused");
    assert_eq!(err.code, "server_redirects");
    assert!(
        err.message.contains(&real),
        "names the target: {}",
        err.message
    );
    assert_eq!(kept(config.path()), None);
    assert_eq!(session.server(), None);
    task.abort();

    // An upgrade to HTTPS is reported the same way: the person types the https address.
    let (front, task) = redirecting("https://127.0.0.1:1/healthz".into()).await;
    let err = session.set_server(&front).await.expect_err("refused");
    assert_eq!(err.code, "server_redirects");
    assert!(
        err.message.contains("https://127.0.0.1:1"),
        "{}",
        err.message
    );
    assert_eq!(kept(config.path()), None);
    task.abort();

    // The real server, typed with http://, on this machine: kept, and no warning.
    assert_eq!(session.set_server(&real).await.expect("kept"), real);
    assert_eq!(kept(config.path()).as_deref(), Some(real.as_str()));
    let security = session.server_security().expect("a server");
    assert_eq!(security.warning, None);
}

#[tokio::test]
async fn an_address_without_a_scheme_is_https_only() {
    let server = support::start_server().await;
    let real = server.base.clone();
    let config = tempfile::tempdir().expect("config dir");
    let session = Session::load(config.path().to_path_buf());

    // The same server typed without http://: the app speaks HTTPS to it, which it does
    // not answer, and says how to reach a server without HTTPS. Nothing is kept.
    let bare = real.trim_start_matches("http://");
    let err = session.set_server(bare).await.expect_err("no TLS there");
    assert_eq!(err.code, "server_unreachable");
    assert!(
        err.message.contains(&format!("https://{bare}")) && err.message.contains("http://"),
        "{}",
        err.message
    );
    assert_eq!(kept(config.path()), None);

    // A kept plain-HTTP address across the internet gets the sign-in screen's warning
    // (read back from the config, as on the next start).
    std::fs::write(
        config.path().join("config.json"),
        r#"{"server":"http://chat.example.org"}"#,
    )
    .expect("config");
    let session = Session::load(config.path().to_path_buf());
    let warning = session
        .server_security()
        .and_then(|s| s.warning)
        .expect("a warning");
    assert!(warning.contains("without encryption"), "{warning}");
}
