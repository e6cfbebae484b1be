//! An engine reached over ssh as the docker CLI reaches it: each connection is
//! `ssh -o ConnectTimeout=30 -T [-l USER] [-p PORT] -- HOST docker system dial-stdio`, whose
//! standard input and output carry the engine's HTTP (docker/cli `cli/connhelper`). The user's
//! own ssh (its config, agent, known hosts) decides how, and nothing runs on the host but the
//! docker CLI. bollard's ssh transport starts a multiplexing master per connection through the
//! `openssh` crate instead; this one is the CLI's own command, so what works for `docker -H
//! ssh://...` works here.
//!
//! An address with a path, `ssh://[USER@]HOST[:PORT]/PATH`, names the engine's socket on that
//! host, as Podman's `CONTAINER_HOST` and `podman system connection` write it: a Podman host
//! need not have the docker CLI (and Podman has no `dial-stdio`). One ssh process forwards a
//! socket of this run's own to it (`ssh -N -L LOCAL:PATH`, OpenSSH's stream-local forwarding;
//! its `-W` takes no path), for as long as the engine is used.

use std::future::Future;
use std::io;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::process::Stdio;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::task::{Context, Poll};
use std::time::Duration;

use hyper_util::client::legacy::connect::{Connected, Connection};
use hyper_util::rt::TokioIo;
use tokio::io::{AsyncBufReadExt, AsyncReadExt, BufReader};
use tokio::process::{Child, ChildStdin, ChildStdout, Command};
use tokio::sync::Notify;

/// `ssh://[USER@]HOST[:PORT][/PATH]`, as ssh is given it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Destination {
    pub user: Option<String>,
    pub host: String,
    pub port: Option<u16>,
    /// The engine's socket on the host, when the address names one.
    pub socket: Option<String>,
}

impl Destination {
    pub fn parse(url: &str) -> Result<Destination, String> {
        let rest = url
            .strip_prefix("ssh://")
            .ok_or_else(|| format!("{url} is not an ssh:// address"))?;
        let (rest, socket) = match rest.split_once('/') {
            Some((rest, path)) if !path.is_empty() => (rest, Some(format!("/{path}"))),
            Some((rest, _)) => (rest, None),
            None => (rest, None),
        };
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
            socket,
        })
    }

    /// The words after `ssh`, as the docker CLI gives them.
    pub fn args(&self) -> Vec<String> {
        let mut args = self.login(&["-T"]);
        args.extend(["--", &self.host, "docker", "system", "dial-stdio"].map(String::from));
        args
    }

    /// The words after `ssh` that forward `local` to the engine's socket on the host (none when
    /// the address names no socket), once the forwarding listens (or ssh exits, saying why).
    pub fn forward_args(&self, local: &Path) -> Option<Vec<String>> {
        let socket = self.socket.as_deref()?;
        let mut args = self.login(&[
            "-o",
            "ExitOnForwardFailure=yes",
            "-o",
            "StreamLocalBindUnlink=yes",
            "-N",
            "-T",
        ]);
        args.extend(["-L".to_string(), format!("{}:{socket}", local.display())]);
        args.extend(["--".to_string(), self.host.clone()]);
        Some(args)
    }

    /// `-o ConnectTimeout=30`, then `options`, then the user and port.
    fn login(&self, options: &[&str]) -> Vec<String> {
        let mut args = vec!["-o".to_string(), "ConnectTimeout=30".to_string()];
        args.extend(options.iter().map(|o| o.to_string()));
        if let Some(user) = &self.user {
            args.extend(["-l".to_string(), user.clone()]);
        }
        if let Some(port) = self.port {
            args.extend(["-p".to_string(), port.to_string()]);
        }
        args
    }
}

/// An engine's socket on another host, forwarded to a socket of this run's own by an ssh
/// process, started again whenever it ends (the connection dropped, the host rebooted), so that
/// a resident `auto` keeps its engine: requests in between fail as to an engine that stopped
/// answering, within its wait. Stopped, and the socket's directory removed, when dropped.
pub struct Forward {
    keeper: tokio::task::JoinHandle<()>,
    dir: PathBuf,
}

impl Forward {
    /// Forwards a private socket to the socket `destination` names on its host, once the
    /// forwarding listens; ssh's words go to `said` as it says them, since it keeps running.
    pub async fn open(destination: &Destination, said: Arc<Said>) -> Result<Forward, String> {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "cutover-ssh-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::SeqCst)
        ));
        let local = dir.join("engine.sock");
        let (Some(args), Some(socket)) = (
            destination.forward_args(&local),
            destination.socket.as_deref(),
        ) else {
            return Err(format!("{} names no socket to forward", destination.host));
        };
        crate::private::dir(&dir).map_err(|e| e.to_string())?;
        let first = match start(&args, &said) {
            Ok(mut ssh) => listening(&mut ssh, &local, socket).await.map(|()| ssh),
            Err(e) => Err(e),
        };
        let mut ssh = match first {
            Ok(ssh) => ssh,
            Err(e) => {
                let _ = std::fs::remove_dir_all(&dir);
                return Err(e);
            }
        };
        let keeper = tokio::spawn(async move {
            loop {
                let ended = ssh.wait().await;
                tracing::debug!("ssh forwarding the engine's socket ended ({ended:?}): again");
                tokio::time::sleep(Duration::from_secs(1)).await;
                if let Ok(next) = start(&args, &said) {
                    ssh = next;
                }
            }
        });
        Ok(Forward { keeper, dir })
    }

    /// The forwarded socket's address.
    pub fn local(&self) -> String {
        format!("unix://{}", self.dir.join("engine.sock").display())
    }
}

/// How long a forwarding may take to listen: ssh's `ConnectTimeout=30`, and time to log in.
const FORWARD_WAIT: Duration = Duration::from_secs(40);

/// The lines of ssh's own that a message keeps (a failure is told in its last ones).
const SAID_LINES: usize = 5;

/// One forwarding ssh, its words told to `said` line by line as it says them.
fn start(args: &[String], said: &Arc<Said>) -> Result<Child, String> {
    let mut ssh = Command::new("ssh")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .map_err(|e| format!("cannot run ssh: {e}"))?;
    if let Some(stderr) = ssh.stderr.take() {
        let said = said.clone();
        tokio::spawn(async move {
            let mut lines = BufReader::new(stderr).lines();
            while let Ok(Some(line)) = lines.next_line().await {
                let mut text = said.text.lock().unwrap();
                let kept: Vec<&str> = text.lines().chain([line.trim()]).collect();
                *text = kept[kept.len().saturating_sub(SAID_LINES)..].join("\n");
                drop(text);
                said.ended.notify_waiters();
            }
        });
    }
    Ok(ssh)
}

/// Waits until `ssh` listens at `local`, or says why it did not.
async fn listening(ssh: &mut Child, local: &Path, socket: &str) -> Result<(), String> {
    let started = tokio::time::Instant::now();
    while !local.exists() {
        if let Ok(Some(status)) = ssh.try_wait() {
            return Err(format!("ssh ended ({status}) before it forwarded {socket}"));
        }
        if started.elapsed() > FORWARD_WAIT {
            return Err(format!(
                "ssh did not forward {socket} within {FORWARD_WAIT:?}"
            ));
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    Ok(())
}

impl Drop for Forward {
    fn drop(&mut self) {
        self.keeper.abort();
        let _ = std::fs::remove_dir_all(&self.dir);
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
    /// `message`, with what ssh said when it said anything.
    pub async fn with_words(&self, message: String) -> String {
        match self.words().await {
            words if words.is_empty() => message,
            words => format!("{message}; ssh said: {words}"),
        }
    }

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
        assert!(Destination::parse("ssh://").is_err());
        let hostonly = Destination::parse("ssh://h/").unwrap();
        assert_eq!(hostonly.socket, None);
        assert_eq!(hostonly.forward_args(Path::new("/tmp/x/engine.sock")), None);
    }

    #[test]
    fn an_address_with_a_path_forwards_that_socket() {
        let d =
            Destination::parse("ssh://core@10.0.0.3:22/run/user/1000/podman/podman.sock").unwrap();
        assert_eq!(
            d.socket.as_deref(),
            Some("/run/user/1000/podman/podman.sock")
        );
        assert_eq!(
            d.forward_args(Path::new("/tmp/x/engine.sock"))
                .unwrap()
                .join(" "),
            "-o ConnectTimeout=30 -o ExitOnForwardFailure=yes -o StreamLocalBindUnlink=yes -N -T -l core -p 22 -L /tmp/x/engine.sock:/run/user/1000/podman/podman.sock -- 10.0.0.3"
        );
    }
}
