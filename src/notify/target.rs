//! Notification URLs, scheme first as operators already write them for Apprise and shoutrrr,
//! read when the config file or the command line is: a typo fails there (exit 2), not at the
//! pass that should have told someone. README "Notifications" gives each form and its source.

use percent_encoding::percent_decode_str;
use reqwest::Url;

/// Which messages a URL takes (`?level=`): quiet passes are noise (Diun #1399), so by default
/// only one that moved or failed something is sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub enum Level {
    /// Every message, a pass that found nothing to do included.
    All,
    /// Messages about something that moved or failed.
    Change,
    /// Messages about something that failed.
    Failure,
}

/// Credentials sent with a request: a user and password (basic), or a token (bearer).
#[derive(Debug, Clone, PartialEq)]
pub enum Auth {
    None,
    Basic { user: String, password: String },
    Bearer(String),
}

#[derive(Debug, Clone, PartialEq)]
pub enum MatrixAuth {
    Token(String),
    Login { user: String, password: String },
}

/// How a mail server is reached: STARTTLS when offered, STARTTLS required, or TLS from the
/// first byte.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Security {
    Opportunistic,
    StartTls,
    Tls,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Mail {
    pub host: String,
    pub port: u16,
    pub security: Security,
    pub login: Option<(String, String)>,
    pub from: String,
    pub to: Vec<String>,
}

/// A service and where its API is, as its URL says.
#[derive(Debug, Clone, PartialEq)]
pub enum Channel {
    /// ntfy's JSON publishing: POST to the server's root.
    Ntfy {
        base: Url,
        topic: String,
        auth: Auth,
    },
    /// Gotify's `POST /message`.
    Gotify {
        url: Url,
        token: String,
    },
    /// A Slack incoming webhook.
    Slack {
        url: Url,
    },
    /// A Discord webhook.
    Discord {
        url: Url,
    },
    /// A Microsoft Teams workflow (Power Automate) webhook, which took over from the retired
    /// Office 365 connectors.
    Teams {
        url: Url,
    },
    /// A Matrix room, joined (or already joined) by the account of the token or the login.
    Matrix {
        base: Url,
        auth: MatrixAuth,
        room: String,
    },
    Mail(Mail),
    /// A generic JSON POST.
    Json {
        url: Url,
        auth: Auth,
    },
    /// An Apprise API server's stateful `POST /notify/KEY`, which reaches the rest.
    Apprise {
        url: Url,
        auth: Auth,
        tags: Option<String>,
    },
}

/// One place messages go, and which of them.
#[derive(Debug, Clone, PartialEq)]
pub struct Notifier {
    pub service: Channel,
    pub level: Level,
    /// The URL's scheme and host only, for logs: the rest may hold a token.
    pub shown: String,
}

impl std::fmt::Display for Notifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.shown)
    }
}

impl<'de> serde::Deserialize<'de> for Notifier {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Notifier, D::Error> {
        String::deserialize(d)?
            .parse()
            .map_err(serde::de::Error::custom)
    }
}

/// What a URL says, before the service's own reading of it.
struct Parts {
    url: Url,
    /// `scheme://host`, for messages: never the credentials or the path.
    shown: String,
    /// Its query, `level` taken out.
    query: Vec<(String, String)>,
}

/// Why text is no URL (the url crate's error, which reqwest does not name).
type UrlError = <Url as std::str::FromStr>::Err;

/// A notify URL that cannot be read: bad input, naming the URL by its scheme and host only
/// (the rest may be a secret), with the form it takes.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum NotifyUrlError {
    /// No URL at all; `named` is ` SCHEME://...` when a scheme could be told, else empty.
    #[error("notify URL{named}: {why}; see README \"Notifications\" for the forms")]
    NoUrl { named: String, why: UrlError },
    #[error("notify URL {shown}: level={level} is not all, change or failure")]
    Level { shown: String, level: String },
    #[error("notify URL {shown}: {why}; see README \"Notifications\" for the forms")]
    Form { shown: String, why: Form },
    #[error("notify URL {shown}: ?{name}= is not understood for this service")]
    Query { shown: String, name: String },
}

/// How a URL misses its service's form.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Form {
    #[error("it names no host")]
    NoHost,
    #[error("the form is {0}")]
    Is(&'static str),
    #[error("it names no token nor user and password")]
    NoLogin,
    #[error("{0}:// is not a service cutover sends to (ntfy, gotify, slack, discord, workflows, matrix, smtp, mailto, json, apprise, and their secure forms)")]
    Scheme(String),
    #[error("it names no recipient: add ?to=ADDRESS[,ADDRESS]")]
    NoRecipient,
    #[error("{field}={address}: {why}")]
    Address {
        field: &'static str,
        address: String,
        why: String,
    },
    /// The service's own URL, made from this one, does not parse.
    #[error("{0}")]
    Url(UrlError),
}

crate::error::category! { NotifyUrlError => bad_input }

impl Parts {
    fn host(&self) -> Result<String, Form> {
        match self.url.host_str() {
            Some(h) if !h.is_empty() => Ok(h.to_string()),
            _ => Err(Form::NoHost),
        }
    }

    /// `HOST[:PORT]` as written.
    fn authority(&self) -> Result<String, Form> {
        let host = self.host()?;
        Ok(match self.url.port() {
            Some(p) => format!("{host}:{p}"),
            None => host,
        })
    }

    /// The path's segments, decoded, empty ones left out.
    fn segments(&self) -> Vec<String> {
        self.url
            .path_segments()
            .into_iter()
            .flatten()
            .filter(|s| !s.is_empty())
            .map(decode)
            .collect()
    }

    fn user(&self) -> Option<String> {
        Some(self.url.username())
            .filter(|u| !u.is_empty())
            .map(decode)
    }

    fn password(&self) -> Option<String> {
        self.url.password().map(decode)
    }

    /// A user and password as basic credentials, a user alone as a token.
    fn auth(&self) -> Auth {
        match (self.user(), self.password()) {
            (Some(user), Some(password)) => Auth::Basic { user, password },
            (Some(token), None) => Auth::Bearer(token),
            _ => Auth::None,
        }
    }

    /// `http`, or `https` when the scheme ends with `s` (`ntfys`, `jsons`, ...).
    fn web(&self, secure: bool, authority: &str, path: &str) -> Result<Url, Form> {
        let scheme = if secure { "https" } else { "http" };
        Url::parse(&format!("{scheme}://{authority}{path}")).map_err(Form::Url)
    }

    /// The query parameter `name`, taken out; those left at the end are refused.
    fn take(&mut self, name: &str) -> Option<String> {
        let at = self.query.iter().position(|(k, _)| k == name)?;
        Some(self.query.remove(at).1)
    }

    fn exact_segments(&self, want: usize, form: &'static str) -> Result<Vec<String>, Form> {
        let segments = self.segments();
        match segments.len() == want {
            true => Ok(segments),
            false => Err(Form::Is(form)),
        }
    }
}

fn decode(s: &str) -> String {
    percent_decode_str(s).decode_utf8_lossy().into_owned()
}

impl std::str::FromStr for Notifier {
    type Err = NotifyUrlError;

    /// The error names the URL by its scheme and host only, and says what form it takes.
    fn from_str(text: &str) -> Result<Notifier, NotifyUrlError> {
        let url = Url::parse(text.trim()).map_err(|why| {
            // Only a scheme is named: text that is no URL may be a token pasted on its own.
            let scheme = crate::secrets::shown_scheme(text);
            let named = scheme.map_or(String::new(), |s| format!(" {s}://..."));
            NotifyUrlError::NoUrl { named, why }
        })?;
        let shown = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
        let mut query: Vec<(String, String)> = url.query_pairs().into_owned().collect();
        let level = match query.iter().position(|(k, _)| k == "level") {
            Some(at) => match query.remove(at).1.as_str() {
                "all" => Level::All,
                "change" => Level::Change,
                "failure" => Level::Failure,
                other => {
                    return Err(NotifyUrlError::Level {
                        shown,
                        level: other.to_string(),
                    })
                }
            },
            None => Level::Change,
        };
        let mut parts = Parts {
            url,
            shown: shown.clone(),
            query,
        };
        let service = service(&mut parts).map_err(|why| NotifyUrlError::Form {
            shown: shown.clone(),
            why,
        })?;
        if let Some((name, _)) = parts.query.first() {
            return Err(NotifyUrlError::Query {
                shown: parts.shown,
                name: name.clone(),
            });
        }
        // Its tokens are secrets, and so is the whole of an address that may hide one: an
        // error that quotes them shows `***`.
        for secret in service.secrets() {
            crate::secrets::register(&secret);
        }
        Ok(Notifier {
            service,
            level,
            shown,
        })
    }
}

impl Auth {
    fn secrets(&self) -> Vec<String> {
        match self {
            Auth::None => vec![],
            Auth::Basic { password, .. } => vec![password.clone()],
            Auth::Bearer(token) => vec![token.clone()],
        }
    }
}

impl Channel {
    fn secrets(&self) -> Vec<String> {
        match self {
            Channel::Ntfy { auth, .. } => auth.secrets(),
            Channel::Gotify { url, token } => vec![url.to_string(), token.clone()],
            // The webhook's last two segments are its id and token.
            Channel::Slack { url } | Channel::Discord { url } => {
                let segments: Vec<String> = url
                    .path_segments()
                    .into_iter()
                    .flatten()
                    .map(decode)
                    .collect();
                let mut secrets = vec![url.to_string()];
                secrets.extend(segments.iter().rev().take(2).cloned());
                secrets
            }
            Channel::Teams { url } => {
                let mut secrets = vec![url.to_string()];
                secrets.extend(
                    url.query_pairs()
                        .filter(|(k, _)| k == "sig")
                        .map(|(_, v)| v.into_owned()),
                );
                secrets
            }
            Channel::Matrix { auth, .. } => match auth {
                MatrixAuth::Token(t) => vec![t.clone()],
                MatrixAuth::Login { password, .. } => vec![password.clone()],
            },
            Channel::Mail(mail) => mail.login.iter().map(|(_, p)| p.clone()).collect(),
            Channel::Json { url, auth } | Channel::Apprise { url, auth, .. } => {
                let mut secrets = auth.secrets();
                secrets.push(url.to_string());
                secrets
            }
        }
    }
}

/// The service a URL names, read from its scheme.
fn service(p: &mut Parts) -> Result<Channel, Form> {
    let scheme = p.url.scheme().to_string();
    let secure = scheme.ends_with('s');
    Ok(match scheme.as_str() {
        "ntfy" | "ntfys" => {
            let [topic] = <[String; 1]>::try_from(
                p.exact_segments(1, "ntfy[s]://[USER:PASSWORD@|TOKEN@]HOST[:PORT]/TOPIC")?,
            )
            .expect("one segment");
            Channel::Ntfy {
                base: p.web(secure, &p.authority()?, "/")?,
                topic,
                auth: p.auth(),
            }
        }
        "gotify" | "gotifys" => {
            let mut segments = p.segments();
            let token = segments
                .pop()
                .ok_or(Form::Is("gotify[s]://HOST[:PORT][/PATH]/TOKEN"))?;
            let path: String = segments.iter().map(|s| format!("/{s}")).collect();
            Channel::Gotify {
                url: p.web(secure, &p.authority()?, &format!("{path}/message"))?,
                token,
            }
        }
        "slack" => {
            let tokens = p.exact_segments(2, "slack://TOKEN_A/TOKEN_B/TOKEN_C")?;
            // The first token is the URL's host: `slack://T000/B000/XXXX`.
            let first = p.host()?;
            Channel::Slack {
                url: Url::parse(&format!(
                    "https://hooks.slack.com/services/{first}/{}/{}",
                    tokens[0], tokens[1]
                ))
                .map_err(Form::Url)?,
            }
        }
        "discord" => {
            let token = p.exact_segments(1, "discord://WEBHOOK_ID/WEBHOOK_TOKEN")?;
            Channel::Discord {
                url: Url::parse(&format!(
                    "https://discord.com/api/webhooks/{}/{}",
                    p.host()?,
                    token[0]
                ))
                .map_err(Form::Url)?,
            }
        }
        "workflow" | "workflows" => {
            let form = "workflows://HOST[:PORT]/WORKFLOW/SIGNATURE";
            let parts = p.exact_segments(2, form)?;
            let mut url = p.web(
                true,
                &p.authority()?,
                &format!("/workflows/{}/triggers/manual/paths/invoke", parts[0]),
            )?;
            url.query_pairs_mut()
                .append_pair("api-version", "2016-06-01")
                .append_pair("sp", "/triggers/manual/run")
                .append_pair("sv", "1.0")
                .append_pair("sig", &parts[1]);
            Channel::Teams { url }
        }
        "matrix" | "matrixs" => {
            let auth = match (p.user(), p.password()) {
                (Some(user), Some(password)) => MatrixAuth::Login { user, password },
                (Some(token), None) => MatrixAuth::Token(token),
                _ => return Err(Form::NoLogin),
            };
            let host = p.host()?;
            // `#alias` is the URL's fragment; a room id is its path.
            let room = match (p.url.fragment().map(decode), p.segments().as_slice()) {
                (Some(alias), []) => format!("#{alias}"),
                (None, [room]) => room.clone(),
                _ => {
                    return Err(Form::Is(
                        "matrix[s]://TOKEN@HOST[:PORT]/!ROOM_ID or .../#ALIAS, one room",
                    ))
                }
            };
            // A room named without its server is on this one, as Apprise reads it.
            let room = match room.contains(':') {
                true => room,
                false => format!("{room}:{host}"),
            };
            Channel::Matrix {
                base: p.web(secure, &p.authority()?, "/")?,
                auth,
                room,
            }
        }
        "smtp" | "smtps" | "mailto" | "mailtos" => Channel::Mail(mail(p, &scheme)?),
        "json" | "jsons" | "http" | "https" => {
            let mut url = p.web(secure, &p.authority()?, p.url.path())?;
            // What is left of the query is the receiver's own.
            let query = std::mem::take(&mut p.query);
            if !query.is_empty() {
                url.query_pairs_mut().extend_pairs(query);
            }
            Channel::Json {
                url,
                auth: p.auth(),
            }
        }
        "apprise" | "apprises" => {
            let key = p.exact_segments(1, "apprise[s]://[USER:PASSWORD@]HOST[:PORT]/KEY")?;
            Channel::Apprise {
                url: p.web(secure, &p.authority()?, &format!("/notify/{}", key[0]))?,
                auth: p.auth(),
                tags: p.take("tags"),
            }
        }
        other => return Err(Form::Scheme(other.to_string())),
    })
}

/// `smtp://[USER:PASSWORD@]HOST[:PORT]/?to=A[,B]&from=F`, as shoutrrr writes it.
fn mail(p: &mut Parts, scheme: &str) -> Result<Mail, Form> {
    let (security, port) = match scheme {
        "smtps" => (Security::Tls, 465),
        "mailtos" => (Security::StartTls, 587),
        _ => (Security::Opportunistic, 25),
    };
    let to: Vec<String> = p
        .take("to")
        .ok_or(Form::NoRecipient)?
        .split(',')
        .map(|a| a.trim().to_string())
        .filter(|a| !a.is_empty())
        .collect();
    for address in &to {
        address
            .parse::<lettre::Address>()
            .map_err(|e| Form::Address {
                field: "to",
                address: address.clone(),
                why: e.to_string(),
            })?;
    }
    let from = p.take("from").unwrap_or_else(|| to[0].clone());
    from.parse::<lettre::Address>().map_err(|e| Form::Address {
        field: "from",
        address: from.clone(),
        why: e.to_string(),
    })?;
    let login = p.user().map(|u| (u, p.password().unwrap_or_default()));
    Ok(Mail {
        host: p.host()?,
        port: p.url.port().unwrap_or(port),
        security,
        login,
        from,
        to,
    })
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::testing::{cases, mutated_text, said, seeds, ARBITRARY, MUTATED};

    /// A URL from the config file or `--notify`: read, or refused with an error that says it is
    /// about a notify URL.
    fn read_or_refused(text: &str) -> Result<(), TestCaseError> {
        if let Err(e) = text.parse::<Notifier>().map_err(|e| e.to_string()) {
            said(&e)?;
            prop_assert!(e.starts_with("notify URL"), "{}", e);
        }
        Ok(())
    }

    proptest! {
        #![proptest_config(cases(ARBITRARY))]
        /// Text that is no URL at all may be all secret (a token pasted without its scheme,
        /// `https:/` mistyped): its error quotes no more of it than a scheme, and a token, with
        /// its `_`, cannot be one.
        #[test]
        fn text_that_is_no_url_is_refused_without_quoting_it(
            head in "[ -~]{0,30}", token in "[A-Za-z0-9]{6}_[A-Za-z0-9]{10}", tail in "[ -~]{0,30}"
        ) {
            let text = format!("{head}{token}{tail}");
            read_or_refused(&text)?;
            if Url::parse(text.trim()).is_err() {
                let e = text.parse::<Notifier>().unwrap_err().to_string();
                prop_assert!(!e.contains(&token), "{}", e);
            }
        }
    }

    proptest! {
        // A URL read registers its tokens as secrets, which every test then sees scrubbed: the
        // same mutants each run, so that no run registers a word another test prints.
        #![proptest_config(ProptestConfig {
            rng_seed: proptest::test_runner::RngSeed::Fixed(25),
            ..cases(MUTATED)
        })]
        #[test]
        fn mistyped_urls_are_read_or_refused(
            text in mutated_text(seeds(&[
                "ntfys://tk_secret@ntfy.example:8443/upgrades",
                "gotify://push.example/gotify/AbC.token?level=failure",
                "slack://T0001/B0002/XXXXsecret",
                "discord://1234/tok-en",
                "workflows://prod.example:443/abc/SIGsecret",
                "matrixs://syt_token@matrix.example/#ops",
                "smtps://ops:pw@mail.example/?to=a@example.com,b@example.com&from=cutover@example.com",
                "jsons://user:pw@hooks.example/cutover?x=1",
                "apprises://apprise.example/key?tags=ops",
            ]))
        ) {
            read_or_refused(&text)?;
        }
    }

    fn parse(text: &str) -> Notifier {
        text.parse().unwrap_or_else(|e| panic!("{text}: {e}"))
    }

    fn refused(text: &str) -> String {
        text.parse::<Notifier>().unwrap_err().to_string()
    }

    #[test]
    fn each_service_reads_the_url_apprise_writes() {
        let ntfy = parse("ntfys://tk_secret@ntfy.example:8443/upgrades");
        assert_eq!(
            ntfy.service,
            Channel::Ntfy {
                base: Url::parse("https://ntfy.example:8443/").unwrap(),
                topic: "upgrades".into(),
                auth: Auth::Bearer("tk_secret".into()),
            }
        );
        assert_eq!(ntfy.shown, "ntfys://ntfy.example");
        assert_eq!(ntfy.level, Level::Change);
        let Channel::Gotify { url, token } =
            parse("gotify://push.example/gotify/AbC.token?level=failure").service
        else {
            panic!()
        };
        assert_eq!(url.as_str(), "http://push.example/gotify/message");
        assert_eq!(token, "AbC.token");
        assert_eq!(
            parse("slack://T0001/B0002/XXXXsecret").service,
            Channel::Slack {
                url: Url::parse("https://hooks.slack.com/services/T0001/B0002/XXXXsecret").unwrap()
            }
        );
        assert_eq!(
            parse("discord://1234/tok-en").service,
            Channel::Discord {
                url: Url::parse("https://discord.com/api/webhooks/1234/tok-en").unwrap()
            }
        );
        let Channel::Teams { url } =
            parse("workflows://prod-1.westeurope.logic.azure.com:443/abcd/SIG-1").service
        else {
            panic!()
        };
        assert_eq!(url.as_str(), "https://prod-1.westeurope.logic.azure.com/workflows/abcd/triggers/manual/paths/invoke?api-version=2016-06-01&sp=%2Ftriggers%2Fmanual%2Frun&sv=1.0&sig=SIG-1");
        assert_eq!(
            parse("matrixs://syt_tok@matrix.example/#ops").service,
            Channel::Matrix {
                base: Url::parse("https://matrix.example/").unwrap(),
                auth: MatrixAuth::Token("syt_tok".into()),
                room: "#ops:matrix.example".into(),
            }
        );
        let Channel::Matrix { room, auth, .. } =
            parse("matrix://bot:p%40ss@127.0.0.1:8008/!abc:example.org").service
        else {
            panic!()
        };
        assert_eq!(room, "!abc:example.org");
        assert_eq!(
            auth,
            MatrixAuth::Login {
                user: "bot".into(),
                password: "p@ss".into()
            }
        );
        assert_eq!(
            parse("smtp://relay.example:2525/?to=ops@example.com,dba@example.com").service,
            Channel::Mail(Mail {
                host: "relay.example".into(),
                port: 2525,
                security: Security::Opportunistic,
                login: None,
                from: "ops@example.com".into(),
                to: vec!["ops@example.com".into(), "dba@example.com".into()],
            })
        );
        let Channel::Mail(mail) =
            parse("mailtos://me:pw@smtp.example?to=a@example.com&from=cutover@example.com").service
        else {
            panic!()
        };
        assert_eq!(
            (mail.port, mail.security, mail.login),
            (587, Security::StartTls, Some(("me".into(), "pw".into())))
        );
        assert_eq!(
            parse("jsons://u:p@hooks.example/in?team=ops&level=all").service,
            Channel::Json {
                url: Url::parse("https://hooks.example/in?team=ops").unwrap(),
                auth: Auth::Basic {
                    user: "u".into(),
                    password: "p".into()
                }
            }
        );
        assert_eq!(parse("https://hooks.example/in").level, Level::Change);
        assert_eq!(
            parse("apprise://apprise.example:8000/cutover?tags=ops").service,
            Channel::Apprise {
                url: Url::parse("http://apprise.example:8000/notify/cutover").unwrap(),
                auth: Auth::None,
                tags: Some("ops".into()),
            }
        );
    }

    #[test]
    fn a_malformed_url_is_refused_without_its_secret_and_with_its_form() {
        for (url, says) in [
            ("ntfy://ntfy.example", "ntfy[s]://"),
            ("ntfy://ntfy.example/a/b", "ntfy[s]://"),
            ("slack://T0001/B0002", "slack://TOKEN_A"),
            ("discord://1234", "discord://WEBHOOK_ID"),
            ("smtp://relay.example", "?to="),
            (
                "smtp://relay.example?to=not-an-address",
                "to=not-an-address",
            ),
            ("telegram://bot/chat", "not a service"),
            ("gotify://push.example/tok?level=loud", "level=loud"),
            ("gotify://push.example/tok?priority=9", "?priority="),
            ("matrix://matrix.example/#ops", "no token"),
            ("ntfy:/x", "names no host"),
            ("no url at all", "README"),
        ] {
            let why = refused(url);
            assert!(why.contains(says), "{url}: {why}");
        }
        let why = refused("slack://T0001/B0002secret");
        assert!(!why.contains("B0002secret"), "{why}");
    }
}
