//! The adapter over a socket that answers as Podman's service does at the moments it differs
//! from Docker's; each answer cites where it was seen.

use std::convert::Infallible;
use std::sync::atomic::{AtomicUsize, Ordering};

use http_body_util::Full;
use hyper::{Request, Response};
use hyper_util::rt::TokioIo;

use super::*;

/// Podman 4.3's `/version`: its components name it (measured on the world's service).
const VERSION: &str = r#"{"Platform":{"Name":"linux/amd64/debian-12"},"Components":[{"Name":"Podman Engine","Version":"4.3.1","Details":{"APIVersion":"4.3.1"}}],"Version":"4.3.1","ApiVersion":"1.41","MinAPIVersion":"1.24","Os":"linux","Arch":"amd64"}"#;

/// What Podman answers about a container removed while it was read: 500, not 404 (seen in CI
/// inspecting by name another test's container as it was removed; podman issues #10120, #10225
/// for the list).
const REMOVED: &str = r#"{"cause":"no such container","message":"container 2d2d1c2a0753 does not exist in database: no such container","response":500}"#;

/// Serves `answer(path, nth request to that path)` on a fresh socket; its address.
fn podman_answering(test: &str, answer: fn(&str, usize) -> (u16, &'static str)) -> String {
    let dir = std::env::temp_dir().join(format!("cutover-docker-{test}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("podman.sock");
    let listener = tokio::net::UnixListener::bind(&path).unwrap();
    let asked: Arc<std::sync::Mutex<std::collections::HashMap<String, usize>>> = Arc::default();
    tokio::spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let asked = asked.clone();
            tokio::spawn(async move {
                let serve = hyper::service::service_fn(move |request: Request<_>| {
                    // `/v1.41/containers/json` is `/containers/json` to the answer.
                    let path = request.uri().path().to_string();
                    let path = match path.strip_prefix("/v1.41") {
                        Some(rest) => rest.to_string(),
                        None => path,
                    };
                    let nth = {
                        let mut asked = asked.lock().unwrap();
                        let n = asked.entry(path.clone()).or_default();
                        *n += 1;
                        *n
                    };
                    let (status, body) = answer(&path, nth);
                    let response = Response::builder()
                        .status(status)
                        .header("Content-Type", "application/json")
                        .header("Api-Version", "1.41")
                        .body(Full::new(Bytes::from_static(body.as_bytes())))
                        .unwrap();
                    async move { Ok::<_, Infallible>(response) }
                });
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(TokioIo::new(stream), serve)
                    .await;
            });
        }
    });
    format!("unix://{}", path.display())
}

#[tokio::test]
async fn a_container_podman_removes_while_it_is_read_is_gone_not_an_error() {
    static LISTED: AtomicUsize = AtomicUsize::new(0);
    let host = podman_answering("removed", |path, nth| match path {
        "/version" => (200, VERSION),
        "/_ping" => (200, "OK"),
        // The first list meets the container being removed; the next does not.
        "/containers/json" if nth == 1 => (500, REMOVED),
        "/containers/json" => {
            LISTED.fetch_add(1, Ordering::SeqCst);
            (200, r#"[{"Id":"2d2d1c2a0753","Names":["/app"]}]"#)
        }
        "/containers/app/json" => (500, REMOVED),
        // podman issue #17341: a network's reading lists its containers, one being removed.
        "/networks/net" if nth == 1 => (500, REMOVED),
        "/networks/net" => (200, r#"{"Name":"net","Id":"9f2c","Driver":"bridge"}"#),
        _ => (404, r#"{"message":"not found"}"#),
    });
    let engine = DockerEngine::connect(&Endpoint::at(&host)).await.unwrap();
    assert!(engine.podman, "told by its version");
    assert_eq!(engine.container_names(false).await.unwrap(), ["app"]);
    assert_eq!(
        LISTED.load(Ordering::SeqCst),
        1,
        "the list was asked again once"
    );
    assert!(engine.inspect("app").await.unwrap().is_none(), "gone");
    assert!(
        engine.network("net").await.unwrap().is_some(),
        "asked again"
    );
}
