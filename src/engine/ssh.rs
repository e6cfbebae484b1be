//! An engine reached over ssh as the docker CLI reaches it: each connection is
//! `ssh -o ConnectTimeout=30 -T [-l USER] [-p PORT] -- HOST docker system dial-stdio`, whose
//! standard input and output carry the engine's HTTP (docker/cli `cli/connhelper`). The user's
//! own ssh (its config, agent, known hosts) decides how, and nothing runs on the host but the
//! docker CLI. bollard's ssh transport starts a multiplexing master per connection through the
//! `openssh` crate instead; this one is the CLI's own command, so what works for `docker -H
//! ssh://...` works here.

use std::future::Future;
use std::io;
use std::pin::Pin;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::AsyncReadExt;
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Notify;

/// `ssh://[USER@]HOST[:PORT]`, as ssh is given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
}

impl Destination {
    pub fn parse(url: &str) -> Result<Destination, String> {
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| format!("{url} is not an ssh:// address"))?;
        if rest.contains('/') && !rest.ends_with('/') {
            return Err(format!(
                "{url}: an ssh address names a host, not a path (the remote's own engine answers)"
            ));
        }
        let rest = rest.trim_end_matches('/');
        let (user, host_port) = match rest.rsplit_once('@') {
            Some((user, rest)) => (Some(user.to_string()), rest),
            None => (None, rest),
        };
        let (host, port) = match host_port.rsplit_once(':') {
            Some((host, port)) => (
                host,
                Some(
                    port.parse()
                        .map_err(|_| format!("{url}: {port:?} is not a port"))?,
                ),
            ),
            None => (host_port, None),
        };
        if host.is_empty() {
            return Err(format!("{url} names no host"));
        }
        Ok(Destination {
            user,
            host: host.to_string(),
            port,
        })
    }

    /// The words after `ssh`, as the docker CLI gives them.
    pub fn args(&self) -> Vec<String> {
        let mut args = vec![
            "-o".to_string(),
            "ConnectTimeout=30".to_string(),
            "-T".to_string(),
        ];
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        args.extend(["--", &self.host, "docker", "system", "dial-stdio"].map(String::from));
        args
    }
}

/// Opens a connection per call, each its own `ssh` process; keeps what ssh last said on its
/// standard error, which is all there is to tell why a host refused.
#[derive(Clone)]
pub struct Connector {
    destination: Destination,
    pub said: Arc<Said>,
}

/// What ssh said last on its standard error, once it closed it.
#[derive(Default)]
pub struct Said {
    text: Mutex<String>,
    ended: Notify,
}

impl Said {
    /// What ssh said; a connection that failed may be told before ssh's own words are read, so
    /// they are awaited a moment.
    pub async fn words(&self) -> String {
        let read = async {
            loop {
                let ended = self.ended.notified();
                let text = self.text.lock().unwrap().clone();
                if !text.is_empty() {
                    return text;
                }
                ended.await;
            }
        };
        tokio::time::timeout(Duration::from_secs(2), read)
            .await
            .unwrap_or_default()
    }
}

impl Connector {
    pub fn new(destination: Destination) -> Connector {
        Connector {
            destination,
            said: Arc::default(),
        }
    }
}

impl tower_service::Service<hyper::Uri> for Connector {
    type Response = Stream;
    type Error = io::Error;
    type Future = Pin<Box<dyn Future<Output = io::Result<Stream>> + Send>>;

    fn poll_ready(&mut self, _: &mut Context<'_>) -> Poll<io::Result<()>> {
        Poll::Ready(Ok(()))
    }

    fn call(&mut self, _: hyper::Uri) -> Self::Future {
        let (args, said) = (self.destination.args(), self.said.clone());
        Box::pin(async move {
            let mut child = Command::new("ssh")
                .args(&args)
                .stdin(Stdio::piped())
                .stdout(Stdio::piped())
                .stderr(Stdio::piped())
                .kill_on_drop(true)
                .spawn()
                .map_err(|e| io::Error::other(format!("cannot run ssh: {e}")))?;
            let (Some(stdin), Some(stdout), Some(mut stderr)) =
                (child.stdin.take(), child.stdout.take(), child.stderr.take())
            else {
                return Err(io::Error::other("ssh was started without its pipes"));
            };
            tokio::spawn(async move {
                let mut text = String::new();
                let _ = stderr.read_to_string(&mut text).await;
                if !text.trim().is_empty() {
                    *said.text.lock().unwrap() = text.trim().to_string();
                    said.ended.notify_waiters();
                }
            });
            Ok(Stream {
                _child: child,
                stdin: TokioIo::new(stdin),
                stdout: TokioIo::new(stdout),
            })
        })
    }
}

/// One connection: the ssh process's output is the engine's answer, its input the request.
pub struct Stream {
    _child: Child,
    stdin: TokioIo<ChildStdin>,
    stdout: TokioIo<ChildStdout>,
}

impl Connection for Stream {
    fn connected(&self) -> Connected {
        Connected::new()
    }
}

impl hyper::rt::Read for Stream {
    fn poll_read(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: hyper::rt::ReadBufCursor<'_>,
    ) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdout).poll_read(cx, buf)
    }
}

impl hyper::rt::Write for Stream {
    fn poll_write(
        mut self: Pin<&mut Self>,
        cx: &mut Context<'_>,
        buf: &[u8],
    ) -> Poll<io::Result<usize>> {
        Pin::new(&mut self.stdin).poll_write(cx, buf)
    }

    fn poll_flush(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_flush(cx)
    }

    fn poll_shutdown(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<io::Result<()>> {
        Pin::new(&mut self.stdin).poll_shutdown(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_address_becomes_the_docker_cli_s_ssh_words() {
        let d = Destination::parse("ssh://deploy@quay-2.lan:2222").unwrap();
        assert_eq!(
            d.args().join(" "),
            "-o ConnectTimeout=30 -T -l deploy -p 2222 -- quay-2.lan docker system dial-stdio"
        );
        let d = Destination::parse("ssh://quay-3").unwrap();
        assert_eq!(
            d.args().join(" "),
            "-o ConnectTimeout=30 -T -- quay-3 docker system dial-stdio"
        );
        assert!(Destination::parse("ssh://h:port").is_err());
        assert!(Destination::parse("ssh://h/var/run/docker.sock").is_err());
        assert!(Destination::parse("ssh://").is_err());
    }
}
