//! Each service's request, as its public API documents it (README "Notifications" cites
//! them), and the sending: over HTTP with reqwest, mail with lettre.

use std::time::Duration;

use lettre::message::header::ContentType;
use lettre::transport::smtp::authentication::Credentials;
use lettre::transport::smtp::client::{Tls, TlsParameters};
use lettre::{AsyncSmtpTransport, AsyncTransport, Tokio1Executor};
use percent_encoding::{utf8_percent_encode, AsciiSet, NON_ALPHANUMERIC};
use reqwest::Url;
use serde_json::{json, Value};

use super::message::{Message, Severity};
use super::target::{Auth, Channel, Mail, MatrixAuth, Notifier, Security};

/// Each attempt's limit: a notifier must not hold a pass for long.
const TIMEOUT: Duration = Duration::from_secs(10);
/// Pauses before the second and third attempts.
const PAUSES: [Duration; 2] = [Duration::from_secs(1), Duration::from_secs(3)];
/// What a room's id or alias keeps of itself in a path: all but RFC 3986's unreserved
/// characters encoded (`#` and `!` above all).
const SEGMENT: &AsciiSet = &NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'.')
    .remove(b'_')
    .remove(b'~');
/// Discord refuses a message's content beyond this many characters.
const DISCORD_MAX: usize = 2000;

/// One HTTP request a service takes.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub method: reqwest::Method,
    pub url: Url,
    pub headers: Vec<(&'static str, String)>,
    pub body: Value,
}

/// Why an attempt failed, and whether another may do better.
#[derive(Debug, thiserror::Error)]
#[error("{why}")]
pub(super) struct Failed {
    why: String,
    again: bool,
}

impl Failed {
    fn permanent(why: String) -> Failed {
        Failed { why, again: false }
    }
}

pub(super) fn client() -> Result<reqwest::Client, Failed> {
    reqwest::Client::builder()
        .timeout(TIMEOUT)
        .user_agent(concat!("cutover/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| Failed::permanent(crate::causes::error_text(&e)))
}

/// The request of a service reached by one POST; Matrix and mail take more than one call.
pub fn request(service: &Channel, m: &Message) -> Option<Request> {
    let failed = m.severity == Severity::Failure;
    let text = m.text();
    let post = |url: &Url, headers: Vec<(&'static str, String)>, body: Value| Request {
        method: reqwest::Method::POST,
        url: url.clone(),
        headers,
        body,
    };
    Some(match service {
        // https://docs.ntfy.sh/publish/#publish-as-json
        Channel::Ntfy { base, topic, auth } => post(
            base,
            auth_header(auth),
            json!({
                "topic": topic,
                "title": m.title,
                "message": text,
                "priority": if failed { 4 } else { 3 },
                "tags": [if failed { "warning" } else { "white_check_mark" }],
            }),
        ),
        // https://gotify.net/api-docs: POST /message, token in X-Gotify-Key.
        Channel::Gotify { url, token } => post(
            url,
            vec![("x-gotify-key", token.clone())],
            json!({"title": m.title, "message": text, "priority": if failed { 8 } else { 5 }}),
        ),
        // https://api.slack.com/messaging/webhooks; &, < and > escaped as Slack's text wants.
        Channel::Slack { url } => post(
            url,
            vec![],
            json!({"text": slack_escape(&format!("*{}*\n{text}", m.title))}),
        ),
        // https://discord.com/developers/docs/resources/webhook#execute-webhook
        Channel::Discord { url } => post(
            url,
            vec![],
            json!({
                "username": "cutover",
                "content": format!("**{}**\n{text}", m.title).chars().take(DISCORD_MAX).collect::<String>(),
            }),
        ),
        // The adaptive card Teams' "When a Teams webhook request is received" workflow posts,
        // as Apprise's workflows plugin sends it.
        Channel::Teams { url } => post(
            url,
            vec![],
            json!({
                "type": "message",
                "attachments": [{
                    "contentType": "application/vnd.microsoft.card.adaptive",
                    "contentUrl": null,
                    "content": {
                        "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                        "type": "AdaptiveCard",
                        "version": "1.4",
                        "body": [
                            {"type": "TextBlock", "text": m.title, "weight": "Bolder", "size": "Large", "wrap": true},
                            {"type": "TextBlock", "text": m.lines.join("\n\n"), "wrap": true},
                        ],
                        "msteams": {"width": "full"},
                    },
                }],
            }),
        ),
        // Apprise's JSON fields (custom_json.py), with the results and the pass's start: what
        // `webhook:` always sent.
        Channel::Json { url, auth } => post(
            url,
            auth_header(auth),
            json!({
                "version": "1.0",
                "title": m.title,
                "message": text,
                "type": m.severity.apprise_type(),
                "attachments": [],
                "started_at": humantime::format_rfc3339_seconds(m.started_at).to_string(),
                "containers": m.results,
            }),
        ),
        // apprise-api's stateful POST /notify/KEY.
        Channel::Apprise { url, auth, tags } => {
            let mut body = json!({
                "title": m.title,
                "body": text,
                "type": m.severity.apprise_type(),
                "format": "text",
            });
            if let Some(tags) = tags {
                body["tag"] = json!(tags);
            }
            post(url, auth_header(auth), body)
        }
        Channel::Matrix { .. } | Channel::Mail(_) => return None,
    })
}

fn auth_header(auth: &Auth) -> Vec<(&'static str, String)> {
    use base64::Engine as _;
    match auth {
        Auth::None => vec![],
        Auth::Basic { user, password } => vec![(
            "authorization",
            format!(
                "Basic {}",
                base64::engine::general_purpose::STANDARD.encode(format!("{user}:{password}"))
            ),
        )],
        Auth::Bearer(token) => vec![("authorization", format!("Bearer {token}"))],
    }
}

fn slack_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Up to three attempts, a pause between them, while failures may pass.
pub(super) async fn with_retries(
    client: &reqwest::Client,
    notifier: &Notifier,
    message: &Message,
) -> Result<(), Failed> {
    let mut pauses = PAUSES.iter();
    loop {
        let failed = match once(client, &notifier.service, message).await {
            Ok(()) => return Ok(()),
            Err(f) => f,
        };
        match (failed.again, pauses.next()) {
            (true, Some(pause)) => {
                tracing::info!("notifying {notifier}: {}; trying again", failed.why);
                tokio::time::sleep(*pause).await;
            }
            _ => return Err(failed),
        }
    }
}

async fn once(client: &reqwest::Client, service: &Channel, m: &Message) -> Result<(), Failed> {
    match service {
        Channel::Matrix { base, auth, room } => matrix(client, base, auth, room, m).await,
        Channel::Mail(mail) => send_mail(mail, m).await,
        _ => {
            let request = request(service, m).expect("a one-request service");
            call(client, &request).await.map(drop)
        }
    }
}

/// Sends `request`; a refusal (4xx but 408 and 429) is not tried again.
async fn call(client: &reqwest::Client, request: &Request) -> Result<Value, Failed> {
    let mut builder = client
        .request(request.method.clone(), request.url.clone())
        .header("content-type", "application/json")
        .body(request.body.to_string());
    for (name, value) in &request.headers {
        builder = builder.header(*name, value);
    }
    let response = builder.send().await.map_err(|e| Failed {
        why: crate::causes::error_text(&e),
        again: true,
    })?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if !status.is_success() {
        let again = status.is_server_error() || status.as_u16() == 408 || status.as_u16() == 429;
        let said: String = text.chars().take(200).collect();
        return Err(Failed {
            why: format!("answered {status}: {said}"),
            again,
        });
    }
    Ok(serde_json::from_str(&text).unwrap_or(Value::Null))
}

/// The Matrix client-server API (spec v1.x, `/_matrix/client/v3`): log in when given a user,
/// join the room (which resolves an alias, and does nothing when already joined), send the
/// message.
async fn matrix(
    client: &reqwest::Client,
    base: &Url,
    auth: &MatrixAuth,
    room: &str,
    m: &Message,
) -> Result<(), Failed> {
    let api = |path: &str| {
        base.join(&format!("_matrix/client/v3/{path}"))
            .map_err(|e| Failed::permanent(e.to_string()))
    };
    let token = match auth {
        MatrixAuth::Token(t) => t.clone(),
        MatrixAuth::Login { user, password } => {
            let login = Request {
                method: reqwest::Method::POST,
                url: api("login")?,
                headers: vec![],
                body: json!({
                    "type": "m.login.password",
                    "identifier": {"type": "m.id.user", "user": user},
                    "password": password,
                }),
            };
            let answer = call(client, &login).await?;
            answer["access_token"]
                .as_str()
                .ok_or_else(|| Failed::permanent("the login answered no access_token".into()))?
                .to_string()
        }
    };
    let bearer = vec![("authorization", format!("Bearer {token}"))];
    let join = Request {
        method: reqwest::Method::POST,
        url: api(&format!("join/{}", utf8_percent_encode(room, SEGMENT)))?,
        headers: bearer.clone(),
        body: json!({}),
    };
    let joined = call(client, &join).await?;
    let room_id = joined["room_id"]
        .as_str()
        .ok_or_else(|| Failed::permanent("joining the room answered no room_id".into()))?;
    let txn = format!(
        "cutover-{}-{}",
        std::process::id(),
        crate::clock::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let send = Request {
        method: reqwest::Method::PUT,
        url: api(&format!(
            "rooms/{}/send/m.room.message/{txn}",
            utf8_percent_encode(room_id, SEGMENT)
        ))?,
        headers: bearer,
        body: json!({"msgtype": "m.text", "body": format!("{}\n{}", m.title, m.text())}),
    };
    call(client, &send).await.map(drop)
}

/// A plain-text mail over SMTP; the server's permanent refusals are not tried again.
async fn send_mail(mail: &Mail, m: &Message) -> Result<(), Failed> {
    let permanent = |e: &dyn std::fmt::Display| Failed::permanent(e.to_string());
    let mut email = lettre::Message::builder()
        .from(mail.from.parse().map_err(|e| permanent(&e))?)
        .subject(&m.title)
        .header(ContentType::TEXT_PLAIN);
    for to in &mail.to {
        email = email.to(to.parse().map_err(|e| permanent(&e))?);
    }
    let email = email.body(m.text()).map_err(|e| permanent(&e))?;
    let tls = TlsParameters::new(mail.host.clone()).map_err(|e| permanent(&e))?;
    let mut transport = AsyncSmtpTransport::<Tokio1Executor>::builder_dangerous(&mail.host)
        .port(mail.port)
        .timeout(Some(TIMEOUT))
        .tls(match mail.security {
            Security::Opportunistic => Tls::Opportunistic(tls),
            Security::StartTls => Tls::Required(tls),
            Security::Tls => Tls::Wrapper(tls),
        });
    if let Some((user, password)) = &mail.login {
        transport = transport.credentials(Credentials::new(user.clone(), password.clone()));
    }
    transport
        .build()
        .send(email)
        .await
        .map(drop)
        .map_err(|e| Failed {
            again: !e.is_permanent(),
            why: crate::causes::error_text(&e),
        })
}

#[cfg(test)]
mod tests {
    use std::time::SystemTime;

    use super::*;

    /// A pass's message as [`crate::auto::notice`] writes one.
    fn message() -> Message {
        Message::new(
            "cutover auto on h1: 1 rolled back".into(),
            vec!["quay: app:1 -> app:2: failed and was rolled back: health <503> & more".into()],
            Severity::Failure,
            json!([{ "container": "quay", "result": "rolled_back" }]),
            SystemTime::UNIX_EPOCH,
        )
    }

    fn notifier(url: &str) -> Notifier {
        url.parse().unwrap()
    }

    #[test]
    fn each_request_is_the_one_its_api_documents() {
        let m = message();
        let r = request(&notifier("ntfy://tk_1@ntfy.example/ops").service, &m).unwrap();
        assert_eq!(r.url.as_str(), "http://ntfy.example/");
        assert_eq!(r.headers, [("authorization", "Bearer tk_1".to_string())]);
        assert_eq!(r.body["topic"], "ops");
        assert_eq!(r.body["priority"], 4);
        assert_eq!(r.body["title"], m.title);
        let r = request(&notifier("gotifys://g.example/tok").service, &m).unwrap();
        assert_eq!(r.url.as_str(), "https://g.example/message");
        assert_eq!(r.headers, [("x-gotify-key", "tok".to_string())]);
        assert_eq!(r.body["priority"], 8);
        let r = request(&notifier("slack://T1/B2/C3").service, &m).unwrap();
        let text = r.body["text"].as_str().unwrap();
        assert!(
            text.starts_with("*cutover auto on h1: 1 rolled back*\n"),
            "{text}"
        );
        assert!(text.contains("health &lt;503&gt; &amp; more"), "{text}");
        let r = request(&notifier("discord://1/t").service, &m).unwrap();
        assert_eq!(r.body["username"], "cutover");
        let r = request(&notifier("workflows://h.example/w/s").service, &m).unwrap();
        assert_eq!(
            r.body["attachments"][0]["content"]["body"][0]["text"],
            m.title
        );
        let r = request(&notifier("json://u:p@h.example:81/in").service, &m).unwrap();
        assert_eq!(r.headers, [("authorization", "Basic dTpw".to_string())]);
        assert_eq!(r.body["type"], "failure");
        assert_eq!(r.body["containers"][0]["container"], "quay");
        assert_eq!(r.body["started_at"], "1970-01-01T00:00:00Z");
        let r = request(&notifier("apprise://a.example/k?tags=ops").service, &m).unwrap();
        assert_eq!(r.url.as_str(), "http://a.example/notify/k");
        assert_eq!(r.body["tag"], "ops");
        assert_eq!(r.body["body"], m.text());
        assert!(request(&notifier("smtp://h.example?to=a@b.example").service, &m).is_none());
    }

    #[test]
    fn a_url_takes_the_messages_of_its_level() {
        let failed = message();
        let success = Message {
            severity: Severity::Success,
            ..failed.clone()
        };
        let quiet = Message {
            severity: Severity::Quiet,
            ..failed.clone()
        };
        let takes = |url: &str| {
            let n = notifier(url);
            [n.takes(&quiet), n.takes(&success), n.takes(&failed)]
        };
        assert_eq!(takes("json://h.example/"), [false, true, true]);
        assert_eq!(takes("json://h.example/?level=all"), [true, true, true]);
        assert_eq!(
            takes("json://h.example/?level=failure"),
            [false, false, true]
        );
    }
}
