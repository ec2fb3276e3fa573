//! Kusto connection strings: `Keyword=Value;Keyword=Value`, keywords case- and
//! space-insensitive, values optionally quoted with `"` or `'` (the quote doubled inside).
//!
//! | keyword (aliases) | meaning |
//! |---|---|
//! | `Data Source` (`Addr`, `Address`, `Network Address`, `Server`) | cluster URL, e.g. `https://help.westeurope.kusto.windows.net`; a path names the database |
//! | `Initial Catalog` (`Database`) | database |
//! | `AAD Federated Security` (`Federated Security`, `Federated`, `Fed`) | `True`: AAD authentication (required with the keys below) |
//! | `Application Client Id` (`AppClientId`) | application (client) id for client credentials |
//! | `Application Key` (`AppKey`) | its secret |
//! | `Authority Id` (`Authority`, `TenantId`, `Tenant`, `Tid`) | AAD tenant (id or domain) |
//! | `Application Token` (`AppToken`, `User Token`, `UsrToken`) | a fixed bearer token |
//! | `Application Name for Tracing` (`TraceAppName`) | `x-ms-app` header |
//! | `User Name for Tracing` (`TraceUserName`) | `x-ms-user` header |
//! | `Domain Hint` | accepted and ignored (the SDKs use it for interactive sign-in only) |
//!
//! The string may also start with the cluster URL itself, as the SDKs accept:
//! `https://help.kusto.windows.net/Samples; Fed=true` (the path names the database).
//!
//! User/password, certificate and interactive authentication keywords are recognised and
//! refused with a hint; any other keyword is an error naming it.
//!
//! Errors never quote a secret: not the value of `Application Key`, `Application Token` or
//! `Password`, and not the text of any part after such a value either
//! ([`ConnectionStringError::AfterSecret`] gives its position instead), because a secret
//! holding an unquoted `;` runs on into the parts after it (`AppKey=abc;X=…` may be the key
//! `abc;X=…`).

use crate::error::{ConnectionStringError, Secret};

/// What a connection string sets.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub(crate) struct ConnectionString {
    pub(crate) data_source: Option<String>,
    pub(crate) database: Option<String>,
    pub(crate) federated: Option<bool>,
    pub(crate) client_id: Option<String>,
    pub(crate) app_key: Option<Secret>,
    pub(crate) authority: Option<String>,
    pub(crate) app_token: Option<Secret>,
    pub(crate) app_name: Option<String>,
    pub(crate) user_name: Option<String>,
}

#[derive(Clone, Copy, PartialEq, Eq)]
#[allow(clippy::enum_variant_names)]
enum Key {
    DataSource,
    Database,
    Federated,
    ClientId,
    AppKey,
    Authority,
    AppToken,
    AppName,
    UserName,
    /// Accepted and ignored (a hint for interactive sign-in, which a background logger never does).
    Ignored,
}

fn keyword(normalized: &str) -> Result<Key, Option<&'static str>> {
    Ok(match normalized {
        "datasource" | "addr" | "address" | "networkaddress" | "server" => Key::DataSource,
        "initialcatalog" | "database" => Key::Database,
        "aadfederatedsecurity" | "federatedsecurity" | "federated" | "fed" | "aadfed" => {
            Key::Federated
        }
        // The SDKs accept `Domain Hint` for every authentication method and use it only for
        // interactive sign-in, so a connection string written for them must not fail here.
        "domainhint" => Key::Ignored,
        "applicationclientid" | "appclientid" => Key::ClientId,
        "applicationkey" | "appkey" => Key::AppKey,
        "authorityid" | "authority" | "tenantid" | "tenant" | "tid" => Key::Authority,
        "applicationtoken" | "apptoken" | "usertoken" | "usrtoken" => Key::AppToken,
        "applicationnamefortracing" | "traceappname" => Key::AppName,
        "usernamefortracing" | "traceusername" => Key::UserName,
        "userid" | "uid" | "user" | "aaduserid" | "password" | "pwd" => {
            return Err(Some(
                "user/password authentication is not supported; use an application key, a managed identity or a token provider",
            ));
        }
        "applicationcertificatethumbprint"
        | "appcert"
        | "applicationcertificatesubjectdistinguishedname"
        | "applicationcertificateissuerdistinguishedname"
        | "applicationcertificatesendx5c"
        | "sendx5c"
        | "applicationcertificateprivatekey"
        | "applicationcertificateblob" => {
            return Err(Some(
                "certificate authentication is not supported; use an application key, a managed identity or a token provider",
            ));
        }
        "interactivelogin" | "loginhint" | "dstsfederatedsecurity" | "dstsfed" => {
            return Err(Some(
                "interactive and dSTS authentication are not supported by a background logger; use an application key, a managed identity or a token provider",
            ));
        }
        _ => return Err(None),
    })
}

/// Keywords (normalized: lowercase, no spaces) whose value is a secret.
const SECRET_KEYWORDS: [&str; 10] = [
    "applicationkey",
    "appkey",
    "applicationtoken",
    "apptoken",
    "usertoken",
    "usrtoken",
    "password",
    "pwd",
    "applicationcertificateprivatekey",
    "applicationcertificateblob",
];

fn normalize(keyword: &str) -> String {
    keyword
        .chars()
        .filter(|c| !c.is_whitespace())
        .collect::<String>()
        .to_ascii_lowercase()
}

/// One `keyword=value` part.
struct Part {
    /// 1-based position (empty parts not counted).
    index: usize,
    keyword: String,
    value: String,
    /// The first secret keyword before this part, as written. Once a secret has been read,
    /// what follows may be its end (a `;` the user did not quote), so errors about later parts
    /// quote none of their text.
    after_secret: Option<String>,
}

impl Part {
    /// `plain` for a part before any secret, else the same problem without the part's text.
    fn error(
        &self,
        problem: &'static str,
        plain: impl FnOnce() -> ConnectionStringError,
    ) -> ConnectionStringError {
        match &self.after_secret {
            Some(secret_keyword) => ConnectionStringError::AfterSecret {
                index: self.index,
                secret_keyword: secret_keyword.clone(),
                problem,
            },
            None => plain(),
        }
    }
}

/// Splits at `;` outside quotes; returns the `keyword=value` parts, values unquoted.
fn pairs(s: &str) -> Result<Vec<Part>, ConnectionStringError> {
    let mut out: Vec<Part> = Vec::new();
    let mut after_secret: Option<String> = None;
    let mut rest = s;
    let mut index = 0;
    while !rest.trim().is_empty() {
        index += 1;
        let (part_end, has_eq) = match (rest.find(';'), rest.find('=')) {
            (Some(sc), Some(eq)) if sc < eq => (sc, false),
            (_, Some(eq)) => (eq, true),
            (Some(sc), None) => (sc, false),
            (None, None) => (rest.len(), false),
        };
        if !has_eq {
            let part = rest[..part_end].trim();
            let lower = part.to_ascii_lowercase();
            if index == 1 && (lower.starts_with("https://") || lower.starts_with("http://")) {
                // The leading-URI form the SDKs accept:
                // `https://help.kusto.windows.net/Samples; Fed=true`.
                out.push(Part {
                    index,
                    keyword: "Data Source".to_string(),
                    value: part.to_string(),
                    after_secret: None,
                });
                rest = rest.get(part_end + 1..).unwrap_or("");
                continue;
            }
            if !part.is_empty() {
                return Err(ConnectionStringError::NotAPair {
                    index,
                    part: format!("{} characters, not shown", part.chars().count()),
                });
            }
            rest = rest.get(part_end + 1..).unwrap_or("");
            index -= 1;
            continue;
        }
        let key = rest[..part_end].trim().to_string();
        let after = rest[part_end + 1..].trim_start();
        let (value, remaining) = match after.chars().next() {
            Some(q @ ('"' | '\'')) => {
                let mut value = String::new();
                let mut chars = after[1..].char_indices().peekable();
                let mut end = None;
                while let Some((i, c)) = chars.next() {
                    if c == q {
                        if chars.peek().map(|(_, n)| *n) == Some(q) {
                            value.push(q);
                            chars.next();
                            continue;
                        }
                        end = Some(1 + i + c.len_utf8());
                        break;
                    }
                    value.push(c);
                }
                let Some(end) = end else {
                    return Err(match &after_secret {
                        Some(secret_keyword) => ConnectionStringError::AfterSecret {
                            index,
                            secret_keyword: secret_keyword.clone(),
                            problem: "opens a quote that is never closed",
                        },
                        None => ConnectionStringError::UnclosedQuote { keyword: key },
                    });
                };
                let tail = after[end..].trim_start();
                let tail = tail.strip_prefix(';').unwrap_or(tail);
                (value, tail)
            }
            _ => match after.find(';') {
                Some(sc) => (after[..sc].trim().to_string(), &after[sc + 1..]),
                None => (after.trim().to_string(), ""),
            },
        };
        let is_secret = SECRET_KEYWORDS.contains(&normalize(&key).as_str());
        out.push(Part {
            index,
            keyword: key.clone(),
            value,
            after_secret: after_secret.clone(),
        });
        if is_secret && after_secret.is_none() {
            after_secret = Some(key);
        }
        rest = remaining;
    }
    Ok(out)
}

fn parse_bool(keyword: &str, v: &str) -> Result<bool, ConnectionStringError> {
    match v.to_ascii_lowercase().as_str() {
        "true" | "yes" | "1" => Ok(true),
        "false" | "no" | "0" => Ok(false),
        _ => Err(ConnectionStringError::InvalidValue {
            keyword: keyword.to_string(),
            value: v.to_string(),
            expected: "expected true or false",
        }),
    }
}

/// Parses a connection string (see the [module docs](self)).
pub(crate) fn parse(s: &str) -> Result<ConnectionString, ConnectionStringError> {
    let mut cs = ConnectionString::default();
    let mut seen: Vec<Key> = Vec::new();
    for part in pairs(s)? {
        let kw = part.keyword.clone();
        let key = keyword(&normalize(&kw)).map_err(|hint| match hint {
            Some(hint) => part.error(
                "names an authentication method this crate does not support",
                || ConnectionStringError::Unsupported {
                    keyword: kw.clone(),
                    hint,
                },
            ),
            None => part.error("is not a known keyword", || {
                ConnectionStringError::UnknownKeyword {
                    keyword: kw.clone(),
                }
            }),
        })?;
        if seen.contains(&key) {
            return Err(part.error("repeats a keyword given before", || {
                ConnectionStringError::Duplicate { keyword: kw }
            }));
        }
        seen.push(key);
        let value = part.value.clone();
        if value.is_empty() {
            return Err(part.error("has an empty value", || {
                ConnectionStringError::InvalidValue {
                    keyword: kw,
                    value: String::new(),
                    expected: "expected a value",
                }
            }));
        }
        match key {
            Key::DataSource => {
                let bad_url = |shown: String| {
                    part.error("is not an http(s) URL", || {
                        ConnectionStringError::InvalidValue {
                            keyword: kw.clone(),
                            value: shown,
                            expected: "expected an http(s) URL such as https://<cluster>.<region>.kusto.windows.net",
                        }
                    })
                };
                // A value that is no URL at all is not shown: it may be the start of a URL
                // whose password holds an unquoted `;` (`https://u:pa;ss@host` ends at `pa`),
                // with nothing left to tell a password from a host.
                // Credentials never belong in the URL (they have keywords of their own), and a
                // password holding `/` or `?` hides its own `@` from a URL parser
                // (`http://u:/pw@host` is host `u`, path `/pw@host`): refuse any `@`, unshown.
                if value.contains('@') {
                    return Err(bad_url(format!(
                        "({} characters, not shown: it holds `@`, as a URL with credentials does; give credentials with the connection string's keywords)",
                        value.chars().count()
                    )));
                }
                let url = logship_http::Url::parse(&value).map_err(|_| {
                    bad_url(format!(
                        "({} characters, not shown: it does not parse as a URL)",
                        value.chars().count()
                    ))
                })?;
                if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
                    return Err(bad_url(crate::config::redact_url(&value)));
                }
                let path = url.path().trim_matches('/');
                if !path.is_empty() && !path.contains('/') {
                    cs.database.get_or_insert_with(|| path.to_string());
                }
                let mut base = url.clone();
                base.set_path("");
                base.set_query(None);
                cs.data_source = Some(base.as_str().trim_end_matches('/').to_string());
            }
            Key::Database => cs.database = Some(value),
            Key::Federated => {
                cs.federated = Some(
                    parse_bool(&kw, &value)
                        .map_err(|plain| part.error("is not true or false", || plain))?,
                )
            }
            Key::ClientId => cs.client_id = Some(value),
            Key::AppKey => cs.app_key = Some(Secret::new(value)),
            Key::Authority => cs.authority = Some(value),
            Key::AppToken => cs.app_token = Some(Secret::new(value)),
            Key::AppName => cs.app_name = Some(value),
            Key::UserName => cs.user_name = Some(value),
            Key::Ignored => {}
        }
    }
    if cs.data_source.is_none() {
        return Err(ConnectionStringError::Missing {
            keyword: "Data Source",
            hint: "name the cluster, e.g. Data Source=https://<cluster>.<region>.kusto.windows.net",
        });
    }
    let uses_aad = cs.client_id.is_some() || cs.app_key.is_some() || cs.app_token.is_some();
    if uses_aad && cs.federated == Some(false) {
        return Err(ConnectionStringError::InvalidValue {
            keyword: "AAD Federated Security".into(),
            value: "False".into(),
            expected: "must be True when application credentials or a token are given",
        });
    }
    if cs.app_key.is_some() && cs.client_id.is_none() {
        return Err(ConnectionStringError::Missing {
            keyword: "Application Client Id",
            hint: "`Application Key` needs the application (client) id it belongs to",
        });
    }
    if cs.client_id.is_some() && cs.app_key.is_none() {
        return Err(ConnectionStringError::Missing {
            keyword: "Application Key",
            hint: "`Application Client Id` needs its secret (certificates are not supported)",
        });
    }
    if cs.app_key.is_some() && cs.authority.is_none() {
        return Err(ConnectionStringError::Missing {
            keyword: "Authority Id",
            hint: "client credentials need the AAD tenant (id or domain)",
        });
    }
    Ok(cs)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn full_string_with_aliases_and_quotes() {
        let cs = parse(
            "Data Source=https://help.westeurope.kusto.windows.net/;Initial Catalog=Logs; \
             AAD Federated Security=True;AppClientId=app-1;AppKey=\"a;b\"\"c\";tenantid=contoso.com",
        )
        .unwrap();
        assert_eq!(
            cs.data_source.as_deref(),
            Some("https://help.westeurope.kusto.windows.net")
        );
        assert_eq!(cs.database.as_deref(), Some("Logs"));
        assert_eq!(cs.federated, Some(true));
        assert_eq!(cs.client_id.as_deref(), Some("app-1"));
        assert_eq!(cs.app_key.as_ref().map(Secret::expose), Some("a;b\"c"));
        assert_eq!(cs.authority.as_deref(), Some("contoso.com"));
    }

    #[test]
    fn database_from_the_path_and_trailing_semicolons() {
        let cs = parse("Server=http://127.0.0.1:8080/db1;;").unwrap();
        assert_eq!(cs.data_source.as_deref(), Some("http://127.0.0.1:8080"));
        assert_eq!(cs.database.as_deref(), Some("db1"));
    }

    #[test]
    fn errors_name_the_keyword() {
        let cases: Vec<(&str, ConnectionStringError)> = vec![
            (
                "Data Sauce=https://x",
                ConnectionStringError::UnknownKeyword {
                    keyword: "Data Sauce".into(),
                },
            ),
            (
                "Data Source=ftp://user:hunter2@x",
                ConnectionStringError::InvalidValue {
                    keyword: "Data Source".into(),
                    value: "(20 characters, not shown: it holds `@`, as a URL with credentials does; give credentials with the connection string's keywords)".into(),
                    expected: "expected an http(s) URL such as https://<cluster>.<region>.kusto.windows.net",
                },
            ),
            (
                "Data Source=ftp://x",
                ConnectionStringError::InvalidValue {
                    keyword: "Data Source".into(),
                    value: "ftp://x".into(),
                    expected: "expected an http(s) URL such as https://<cluster>.<region>.kusto.windows.net",
                },
            ),
            (
                "Data Source=https://x;Fed=maybe",
                ConnectionStringError::InvalidValue {
                    keyword: "Fed".into(),
                    value: "maybe".into(),
                    expected: "expected true or false",
                },
            ),
            (
                "Data Source=https://x;Addr=https://y",
                ConnectionStringError::Duplicate {
                    keyword: "Addr".into(),
                },
            ),
            (
                "Initial Catalog=db",
                ConnectionStringError::Missing {
                    keyword: "Data Source",
                    hint: "name the cluster, e.g. Data Source=https://<cluster>.<region>.kusto.windows.net",
                },
            ),
            (
                "Data Source=https://x;AppClientId=a;AppKey=k",
                ConnectionStringError::Missing {
                    keyword: "Authority Id",
                    hint: "client credentials need the AAD tenant (id or domain)",
                },
            ),
            (
                "Data Source=https://x;AppKey=k;Authority Id=t",
                ConnectionStringError::Missing {
                    keyword: "Application Client Id",
                    hint: "`Application Key` needs the application (client) id it belongs to",
                },
            ),
            (
                "Data Source=https://x;AppKey='unclosed",
                ConnectionStringError::UnclosedQuote {
                    keyword: "AppKey".into(),
                },
            ),
            (
                "Data Source=https://x;justtext",
                ConnectionStringError::NotAPair {
                    index: 2,
                    part: "8 characters, not shown".into(),
                },
            ),
        ];
        for (s, want) in cases {
            assert_eq!(parse(s).unwrap_err(), want, "{s}");
        }
    }

    #[test]
    fn documented_forms_the_sdks_accept() {
        // The leading-URI form, with the database in the path.
        let cs = parse("https://help.kusto.windows.net/Samples; Fed=true").unwrap();
        assert_eq!(
            cs.data_source.as_deref(),
            Some("https://help.kusto.windows.net")
        );
        assert_eq!(cs.database.as_deref(), Some("Samples"));
        assert_eq!(cs.federated, Some(true));
        // `Federated` is an alias; `Domain Hint` is accepted and ignored.
        let cs =
            parse("Data Source=https://x.kusto.windows.net;Federated=True;Domain Hint=contoso.com")
                .unwrap();
        assert_eq!(cs.federated, Some(true));
        // A bare word that is not a URL is still an error.
        assert!(parse("justtext;Data Source=https://x").is_err());
    }

    #[test]
    fn unsupported_auth_is_refused_with_a_hint_and_secrets_never_echo() {
        let e = parse("Data Source=https://x;User ID=bob;Password=hunter2").unwrap_err();
        assert!(
            matches!(&e, ConnectionStringError::Unsupported { keyword, .. } if keyword == "User ID")
        );
        let e = parse("Data Source=https://x;Fed=False;AppClientId=a;AppKey=hunter2;Tenant=t")
            .unwrap_err();
        let msg = e.to_string();
        assert!(!msg.contains("hunter2"), "{msg}");
        assert!(msg.contains("AAD Federated Security"), "{msg}");
        let e = parse("Data Source=https://x;AppClientId=a;AppKey=hunter2;Tenant=t;AppKey=x")
            .unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"));
    }

    #[test]
    fn nothing_after_a_secret_is_echoed() {
        // Issue 14: `AppKey=abc;X=…` echoed `X`, which is the end of a key holding `;`.
        let base = "Data Source=https://x;AppClientId=a;Tenant=t";
        for (tail, problem) in [
            ("AppKey=abc;XZQX=tail", "is not a known keyword"),
            ("AppKey=abc;PwdZQX", "not `keyword=value`"),
            ("Application Key=abc;Fed=ZQX", "is not true or false"),
            ("AppKey=abc;Data Source=ZQX://x", "repeats a keyword"),
            ("AppToken=abc;Password=ZQX", "does not support"),
            ("AppToken=abc;Fed='ZQX", "never closed"),
            ("AppKey=abc;Fed=", "has an empty value"),
            ("Pwd=abc;ZQX=1", "is not supported"),
        ] {
            let e = parse(&format!("{base};{tail}")).unwrap_err();
            let text = format!("{e} / {e:?}");
            assert!(!text.contains("ZQX"), "{tail}: {text}");
            assert!(text.contains(problem), "{tail}: {text}");
        }
        let e = parse("Data Source=https://x;AppKey=abc;Bogus=1").unwrap_err();
        assert_eq!(
            e,
            ConnectionStringError::AfterSecret {
                index: 3,
                secret_keyword: "AppKey".into(),
                problem: "is not a known keyword",
            }
        );
        assert!(e.to_string().contains("AppKey=\"…\""), "{e}");
        // Before any secret, the keyword is still named (it cannot be part of a secret).
        let e = parse("Bogus=1;AppKey=abc").unwrap_err();
        assert_eq!(
            e,
            ConnectionStringError::UnknownKeyword {
                keyword: "Bogus".into()
            }
        );
        // A quoted key holding `;` parses whole.
        let cs = parse(&format!("{base};AppKey=\"abc;X=1\"")).unwrap();
        // A Data Source cut short by an unquoted `;` in its password is not shown.
        let e = parse("Data Source=https://u:Zq7;ss@x.kusto.windows.net").unwrap_err();
        assert!(!e.to_string().contains("Zq7"), "{e}");
        assert_eq!(cs.app_key.as_ref().map(Secret::expose), Some("abc;X=1"));
    }
}
