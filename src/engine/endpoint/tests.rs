//! The store as docker CLI 28.2 writes it (`docker context create remote --docker
//! host=tcp://...,ca=...,cert=...,key=...`, then `docker context use`), read back.

use std::collections::BTreeMap;

use super::*;

struct Store {
    dir: PathBuf,
}

impl Store {
    fn new(test: &str) -> Store {
        let dir =
            std::env::temp_dir().join(format!("cutover-endpoint-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        Store { dir }
    }

    fn context(&self, name: &str, host: &str, tls: bool) {
        let id = "b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a";
        let id = if name == "remote" {
            id.to_string()
        } else {
            context_dir(name)
        };
        let meta = self.dir.join("contexts/meta").join(&id);
        std::fs::create_dir_all(&meta).unwrap();
        std::fs::write(
            meta.join("meta.json"),
            format!(r#"{{"Name":"{name}","Metadata":{{}},"Endpoints":{{"docker":{{"Host":"{host}","SkipTLSVerify":false}}}}}}"#),
        )
        .unwrap();
        if tls {
            let certs = self.dir.join("contexts/tls").join(&id).join("docker");
            std::fs::create_dir_all(&certs).unwrap();
            for f in ["ca.pem", "cert.pem", "key.pem"] {
                std::fs::write(certs.join(f), "-----BEGIN-----").unwrap();
            }
        }
    }

    fn use_context(&self, name: &str) {
        std::fs::write(
            self.dir.join("config.json"),
            format!("{{\n\t\"auths\": {{}},\n\t\"currentContext\": \"{name}\"\n}}"),
        )
        .unwrap();
    }

    fn resolve(
        &self,
        given: &EngineGiven,
        env: &[(&str, &str)],
    ) -> Result<Endpoint, EndpointError> {
        let vars: BTreeMap<String, String> = env
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect();
        let lookup = move |name: &str| vars.get(name).cloned();
        resolve(
            given,
            &Sources {
                env: &lookup,
                config_dir: self.dir.clone(),
            },
        )
    }
}

impl Drop for Store {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn host(h: &str) -> EngineGiven {
    EngineGiven {
        host: Some(h.into()),
        ..EngineGiven::default()
    }
}

fn context(c: &str) -> EngineGiven {
    EngineGiven {
        context: Some(c.into()),
        ..EngineGiven::default()
    }
}

#[test]
fn a_context_is_found_by_the_sha256_of_its_name_with_its_tls_material() {
    let store = Store::new("tls");
    store.context("remote", "tcp://10.0.0.1:2376", true);
    let found = store.resolve(&context("remote"), &[]).unwrap();
    assert_eq!(found.host, "tcp://10.0.0.1:2376");
    assert_eq!(found.context.as_deref(), Some("remote"));
    let tls = found.tls.unwrap();
    assert!(tls.ca.ends_with("contexts/tls/b71199ebd070b36beab7317920c2c2f1d777df8d05e5527d8458fda57cb17a7a/docker/ca.pem"));
    assert!(tls.key.ends_with("docker/key.pem"));
}

#[test]
fn the_choice_follows_the_docker_cli_s_order() {
    let store = Store::new("order");
    store.context("remote", "tcp://10.0.0.1:2376", false);
    store.context("sshy", "ssh://me@10.0.0.2:2222", false);
    let none = EngineGiven::default();
    // Nothing said: the local socket.
    assert_eq!(store.resolve(&none, &[]).unwrap().host, LOCAL);
    // `docker context use`.
    store.use_context("sshy");
    assert_eq!(
        store.resolve(&none, &[]).unwrap().host,
        "ssh://me@10.0.0.2:2222"
    );
    // DOCKER_CONTEXT over the current context.
    let env = [("DOCKER_CONTEXT", "remote")];
    assert_eq!(
        store.resolve(&none, &env).unwrap().host,
        "tcp://10.0.0.1:2376"
    );
    // DOCKER_HOST over both.
    let env = [
        ("DOCKER_CONTEXT", "remote"),
        ("DOCKER_HOST", "unix:///run/other.sock"),
    ];
    assert_eq!(
        store.resolve(&none, &env).unwrap().host,
        "unix:///run/other.sock"
    );
    // --context over DOCKER_HOST, --host over everything.
    assert_eq!(
        store.resolve(&context("sshy"), &env).unwrap().host,
        "ssh://me@10.0.0.2:2222"
    );
    assert_eq!(
        store.resolve(&host("tcp://h:2375"), &env).unwrap().host,
        "tcp://h:2375"
    );
    // The `default` context is DOCKER_HOST or the socket.
    assert_eq!(store.resolve(&context("default"), &[]).unwrap().host, LOCAL);
    assert_eq!(
        store.resolve(
            &EngineGiven {
                host: Some("tcp://h:1".into()),
                context: Some("sshy".into()),
                wait: None,
            },
            &[]
        ),
        Err(EndpointError::Both)
    );
}

#[test]
fn tls_from_the_environment_needs_its_three_files() {
    let store = Store::new("env-tls");
    let certs = store.dir.join("certs");
    std::fs::create_dir_all(&certs).unwrap();
    let env = [
        ("DOCKER_HOST", "tcp://h:2376"),
        ("DOCKER_TLS_VERIFY", "1"),
        ("DOCKER_CERT_PATH", certs.to_str().unwrap()),
    ];
    let e = store
        .resolve(&EngineGiven::default(), &env)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("DOCKER_TLS_VERIFY is set, so cutover needs") && e.contains("certs/ca.pem"),
        "{e}"
    );
    for f in ["ca.pem", "cert.pem", "key.pem"] {
        std::fs::write(certs.join(f), "x").unwrap();
    }
    let found = store.resolve(&EngineGiven::default(), &env).unwrap();
    assert_eq!(found.tls.unwrap().cert, certs.join("cert.pem"));
    // Without DOCKER_TLS_VERIFY, plain TCP.
    assert_eq!(store.resolve(&host("tcp://h:2375"), &[]).unwrap().tls, None);
}

#[test]
fn a_context_that_is_missing_or_broken_says_so() {
    let store = Store::new("missing");
    let e = store
        .resolve(&context("nope"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("there is no docker context \"nope\" in ") && e.contains("docker context ls"),
        "{e}"
    );
    store.context("broken", "x", false);
    let meta = store
        .dir
        .join("contexts/meta")
        .join(context_dir("broken"))
        .join("meta.json");
    std::fs::write(&meta, "{").unwrap();
    let e = store
        .resolve(&context("broken"), &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.starts_with("the docker context \"broken\" cannot be read"),
        "{e}"
    );
}

#[test]
fn an_engine_on_another_host_is_on_another_machine() {
    let machine = |host: &str| Endpoint::at(host).machine();
    use crate::engine::Machine::{Remote, This};
    assert_eq!(machine(LOCAL), This);
    assert_eq!(machine("tcp://127.0.0.1:2376"), This);
    assert_eq!(machine("ssh://root@localhost:2222"), This);
    assert_eq!(machine("tcp://[::1]:2376"), This);
    assert_eq!(machine("tcp://10.0.0.1:2376"), Remote("10.0.0.1".into()));
    assert_eq!(
        machine("ssh://deploy@quay-2.lan:2222"),
        Remote("quay-2.lan".into())
    );
    assert_eq!(machine("ssh://quay-3"), Remote("quay-3".into()));
    assert_eq!(
        machine("tcp://[2001:db8::1]:2376"),
        Remote("2001:db8::1".into())
    );
}

#[test]
fn an_engine_on_a_socket_a_user_owns_is_rootless() {
    let dir = std::env::temp_dir().join(format!("cutover-rootless-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("podman.sock");
    let _listener = std::os::unix::net::UnixListener::bind(&path).unwrap();
    let endpoint = Endpoint::at(&format!("unix://{}", path.display()));
    let owner = |uid: u32| std::os::unix::fs::chown(&path, Some(uid), None);
    if rustix::process::getuid().is_root() {
        assert!(!endpoint.rootless(), "root's own socket");
        owner(1000).unwrap();
    }
    assert!(endpoint.rootless(), "a user's socket");
    assert!(!Endpoint::at("unix:///nowhere/docker.sock").rootless());
    assert!(!Endpoint::at("tcp://127.0.0.1:2376").rootless());
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn each_remote_engine_keeps_its_own_state() {
    let key = |host: &str| Endpoint::at(host).state_key();
    assert_eq!(key(LOCAL), None);
    assert_eq!(key("unix:///run/docker.sock"), None);
    assert_eq!(
        key("unix:///run/user/1000/docker.sock").as_deref(),
        Some("unix__run_user_1000_docker.sock")
    );
    assert_eq!(
        key("ssh://deploy@quay-2.lan:2222").as_deref(),
        Some("ssh_deploy@quay-2.lan_2222")
    );
    assert_eq!(
        key("tcp://10.0.0.1:2376").as_deref(),
        Some("tcp_10.0.0.1_2376")
    );
    assert_eq!(
        key("tcp://[2001:db8::1]:2376").as_deref(),
        Some("tcp__2001_db8__1__2376")
    );
    assert_ne!(key("ssh://a/"), key("tcp://a"));
}

#[test]
fn the_wait_for_an_absent_engine_is_the_flag_else_the_variable_else_two_minutes() {
    let store = Store::new("wait");
    let none = EngineGiven::default();
    let wait =
        |given: &EngineGiven, env: &[(&str, &str)]| store.resolve(given, env).map(|e| e.wait);
    assert_eq!(wait(&none, &[]), Ok(DEFAULT_WAIT));
    assert_eq!(
        wait(&none, &[(WAIT_ENV, "45s")]),
        Ok(Duration::from_secs(45))
    );
    let flag = EngineGiven {
        wait: Some(Duration::from_secs(10)),
        ..EngineGiven::default()
    };
    assert_eq!(
        wait(&flag, &[(WAIT_ENV, "45s")]),
        Ok(Duration::from_secs(10))
    );
    let Err(EndpointError::Wait(why)) = wait(&none, &[(WAIT_ENV, "soon")]) else {
        panic!("a wait that is no duration is refused");
    };
    assert!(
        why.to_string().contains("\"soon\" is not a duration"),
        "{why}"
    );
}

/// Podman's users name its service in `CONTAINER_HOST` (podman(1), `--url`): taken after every
/// word of Docker's own but the CLI's file, in podman(1)'s forms, without Docker's TLS.
#[test]
fn podmans_container_host_comes_after_dockers_own_variables_and_before_its_file() {
    let store = Store::new("podman");
    store.context("remote", "tcp://10.0.0.1:2376", false);
    store.use_context("remote");
    let none = EngineGiven::default();
    let resolved = |env: &[(&str, &str)]| store.resolve(&none, env).map(|e| e.host);
    let rootful = ("CONTAINER_HOST", "unix:///run/podman/podman.sock");
    assert_eq!(
        resolved(&[rootful]).unwrap(),
        "unix:///run/podman/podman.sock",
        "over the current context"
    );
    assert_eq!(
        resolved(&[rootful, ("DOCKER_HOST", "unix:///run/docker.sock")]).unwrap(),
        "unix:///run/docker.sock"
    );
    assert_eq!(
        resolved(&[rootful, ("DOCKER_CONTEXT", "remote")]).unwrap(),
        "tcp://10.0.0.1:2376"
    );
    assert_eq!(
        store
            .resolve(&host("tcp://h:2375"), &[rootful])
            .unwrap()
            .host,
        "tcp://h:2375"
    );
    // podman(1)'s own example, two slashes, is the absolute path.
    assert_eq!(
        resolved(&[("CONTAINER_HOST", "unix://run/user/1000/podman/podman.sock")]).unwrap(),
        "unix:///run/user/1000/podman/podman.sock"
    );
    let plain = [
        ("CONTAINER_HOST", "tcp://127.0.0.1:34451"),
        ("DOCKER_TLS_VERIFY", "1"),
    ];
    let found = store.resolve(&none, &plain).unwrap();
    assert_eq!(
        (found.host.as_str(), found.tls),
        ("tcp://127.0.0.1:34451", None)
    );
    assert_eq!(
        resolved(&[(
            "CONTAINER_HOST",
            "ssh://core@10.0.0.3:22/run/podman/podman.sock"
        )])
        .unwrap(),
        "ssh://core@10.0.0.3:22/run/podman/podman.sock"
    );
    for (url, said) in [
        ("ssh://core@10.0.0.3", "names the service's socket"),
        ("unix://", "names no socket"),
        ("10.0.0.3", "unix://, tcp:// or ssh://"),
    ] {
        let refused = resolved(&[("CONTAINER_HOST", url)])
            .unwrap_err()
            .to_string();
        assert!(
            refused.starts_with(&format!("CONTAINER_HOST={url}: ")),
            "{refused}"
        );
        assert!(refused.contains(said), "{refused}");
    }
}
