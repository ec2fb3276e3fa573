//! Kusto connection strings: `Keyword=Value;Keyword=Value`, keywords case-insensitive, spaces
//! and `_` in them ignored, values optionally quoted with `"` or `'` (the quote doubled inside).
//!
//! The keywords and aliases are those of the Kusto connection-string documentation
//! (<https://learn.microsoft.com/kusto/api/connection-strings/kusto>) and of the official
//! Python SDK (`Azure/azure-kusto-python`, `azure-kusto-data/azure/kusto/data/kcsb.json`, read
//! by `kcsb.py`). Each is accepted, accepted and ignored, or refused with the reason;
//! `tests/connection_string_keywords.rs` checks every one.
//!
//! | keyword (aliases) | meaning |
//! |---|---|
//! | `Data Source` (`Addr`, `Address`, `Network Address`, `Server`) | cluster URL, e.g. `https://help.westeurope.kusto.windows.net`; a one-segment path names the database unless `Initial Catalog` does |
//! | `Initial Catalog` (`Database`) | database |
//! | `AAD Federated Security` (`Federated Security`, `Federated`, `Fed`, `AADFed`) | `True`/`Yes`/`1` or `False`/`No`/`0`: AAD authentication (`False` with credentials is an error) |
//! | `Application Client Id` (`AppClientId`) | application (client) id for client credentials |
//! | `Application Key` (`AppKey`) | its secret |
//! | `Authority Id` (`Authority`, `TenantId`, `Tenant`, `Tid`, `Domain Hint`) | AAD tenant (id or domain); the Python SDK reads `Domain Hint` as the authority too |
//! | `Application Token` (`AppToken`) | a fixed bearer token |
//! | `User Token` (`UsrToken`, `UserToken`) | a fixed bearer token (the same setting as `Application Token`) |
//! | `Application Name for Tracing` (`TraceAppName`) | `x-ms-app` header |
//! | `User Name for Tracing` (`TraceUserName`) | `x-ms-user` header |
//! | `Query Consistency`, `Client Version for Tracing` (`TraceClientVersion`), `Accept`, `Streaming`, `Uncompressed` | accepted and ignored: they shape queries and replies, which a writer never reads (`Streaming` is the query-reply flag, not the ingestion mode: see [`IngestionMode`](crate::IngestionMode)); the booleans must still be true or false |
//!
//! Refused, with the reason in the error: user sign-in (`User ID`/`UID`/`User`/`AAD User ID`/
//! `Login Hint`, `Password`/`PWD`, `Interactive Login`, `Enforce MFA`/`MFA`: a background
//! exporter has no user at a prompt), certificates (`Application Certificate Thumbprint`/
//! `AppCert`, `… Subject Distinguished Name`, `… Issuer Distinguished Name`, `… SendX5c` and its
//! aliases, `… Private Key`, `… Blob`, and `Azure Region`, which serves them), `ManagedServiceIdentity`
//! (the documentation says it cannot be set by a connection string: use
//! [`with_managed_identity`](crate::KustoBuilder::with_managed_identity)), `dSTS Federated Security`
//! (`dstsfed`, `dststokentype`), and the Python SDK's unsupported `Data Source Uri` and
//! `Namespace`. Any other keyword is an error naming it and listing the accepted ones.
//!
//! The string may also start with the cluster URL itself, as the documentation and the SDKs
//! accept: a first segment without `=` is the Data Source
//! (`https://help.kusto.windows.net/Samples; Fed=true`, the path naming the database). The
//! tools' `@cluster/database` shorthand is refused (it names no URL).
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

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
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
    /// Accepted and ignored; the payload is the canonical keyword, so a repeat is still caught.
    Ignored(&'static str),
}

/// What a keyword does here.
#[derive(Clone, Copy)]
enum Meaning {
    /// Sets this setting.
    Sets(Key),
    /// Valid for Kusto, meaningless for a writer: parsed (booleans checked) and ignored.
    Ignored { boolean: bool },
    /// Valid for Kusto, an authentication method or option a background exporter cannot use.
    Refused(&'static str),
}

/// One keyword: its canonical name, its aliases (normalized: lowercase, no spaces or `_`),
/// and what it does.
///
/// The keywords and aliases are those of the Kusto connection-string documentation
/// (<https://learn.microsoft.com/kusto/api/connection-strings/kusto>) and of the official
/// Python SDK's keyword list (`Azure/azure-kusto-python`,
/// `azure-kusto-data/azure/kusto/data/kcsb.json`, read by `kcsb.py`).
struct Keyword {
    name: &'static str,
    aliases: &'static [&'static str],
    meaning: Meaning,
}

const USER_SIGN_IN: &str = "user sign-in (a prompt, a password or a login hint) is not possible in a \
     background exporter; use an application key, a managed identity or a token provider";
const CERTIFICATE: &str = "certificate authentication is not supported; use an application key, a \
     managed identity or a token provider";

/// Every keyword of the documentation and of the Python SDK, accepted, ignored or refused.
const KEYWORDS: &[Keyword] = &[
    // Accepted: they set something.
    Keyword {
        name: "Data Source",
        aliases: &["addr", "address", "networkaddress", "server"],
        meaning: Meaning::Sets(Key::DataSource),
    },
    Keyword {
        name: "Initial Catalog",
        aliases: &["database"],
        meaning: Meaning::Sets(Key::Database),
    },
    Keyword {
        name: "AAD Federated Security",
        aliases: &["federatedsecurity", "federated", "fed", "aadfed"],
        meaning: Meaning::Sets(Key::Federated),
    },
    Keyword {
        name: "Application Client Id",
        aliases: &["appclientid"],
        meaning: Meaning::Sets(Key::ClientId),
    },
    Keyword {
        name: "Application Key",
        aliases: &["appkey"],
        meaning: Meaning::Sets(Key::AppKey),
    },
    // The Python SDK also reads `Domain Hint` as the authority (kcsb.json).
    Keyword {
        name: "Authority Id",
        aliases: &["authority", "tenantid", "tenant", "tid", "domainhint"],
        meaning: Meaning::Sets(Key::Authority),
    },
    Keyword {
        name: "Application Token",
        aliases: &["apptoken"],
        meaning: Meaning::Sets(Key::AppToken),
    },
    // A user's bearer token is used exactly as an application's: a fixed token.
    Keyword {
        name: "User Token",
        aliases: &["usrtoken"],
        meaning: Meaning::Sets(Key::AppToken),
    },
    Keyword {
        name: "Application Name for Tracing",
        aliases: &["traceappname"],
        meaning: Meaning::Sets(Key::AppName),
    },
    Keyword {
        name: "User Name for Tracing",
        aliases: &["traceusername"],
        meaning: Meaning::Sets(Key::UserName),
    },
    // Accepted and ignored: they change queries or replies, which a writer never reads.
    Keyword {
        name: "Query Consistency",
        aliases: &[],
        meaning: Meaning::Ignored { boolean: false },
    },
    Keyword {
        name: "Client Version for Tracing",
        aliases: &["traceclientversion"],
        meaning: Meaning::Ignored { boolean: false },
    },
    Keyword {
        name: "Accept",
        aliases: &[],
        meaning: Meaning::Ignored { boolean: true },
    },
    Keyword {
        name: "Streaming",
        aliases: &[],
        meaning: Meaning::Ignored { boolean: true },
    },
    Keyword {
        name: "Uncompressed",
        aliases: &[],
        meaning: Meaning::Ignored { boolean: true },
    },
    // Refused, with the reason.
    Keyword {
        name: "User ID",
        aliases: &["uid", "user", "aaduserid", "loginhint"],
        meaning: Meaning::Refused(USER_SIGN_IN),
    },
    Keyword {
        name: "Password",
        aliases: &["pwd"],
        meaning: Meaning::Refused(USER_SIGN_IN),
    },
    Keyword {
        name: "Interactive Login",
        aliases: &[],
        meaning: Meaning::Refused(USER_SIGN_IN),
    },
    Keyword {
        name: "Enforce MFA",
        aliases: &["mfa"],
        meaning: Meaning::Refused(
            "multi-factor authentication needs a user at a prompt, which a background exporter \
             never has; use an application key, a managed identity or a token provider",
        ),
    },
    Keyword {
        name: "Application Certificate Thumbprint",
        aliases: &["appcert"],
        meaning: Meaning::Refused(CERTIFICATE),
    },
    Keyword {
        name: "Application Certificate Subject Distinguished Name",
        aliases: &["applicationcertificatesubject"],
        meaning: Meaning::Refused(CERTIFICATE),
    },
    Keyword {
        name: "Application Certificate Issuer Distinguished Name",
        aliases: &["applicationcertificateissuer"],
        meaning: Meaning::Refused(CERTIFICATE),
    },
    Keyword {
        name: "Application Certificate SendX5c",
        aliases: &[
            "sendx5c",
            "applicationcertificatesendpubliccertificate",
            "applicationcertificatex5c",
            "sendcertificatechain",
        ],
        meaning: Meaning::Refused(CERTIFICATE),
    },
    Keyword {
        name: "Application Certificate Private Key",
        aliases: &[],
        meaning: Meaning::Refused(CERTIFICATE),
    },
    Keyword {
        name: "Application Certificate Blob",
        aliases: &[],
        meaning: Meaning::Refused(CERTIFICATE),
    },
    Keyword {
        name: "Azure Region",
        aliases: &["azureregion", "region"],
        meaning: Meaning::Refused(
            "a regional token endpoint serves certificate (subject name and issuer) \
             authentication, which is not supported; use an application key, a managed identity \
             or a token provider",
        ),
    },
    Keyword {
        name: "ManagedServiceIdentity",
        aliases: &["managedserviceidentity"],
        meaning: Meaning::Refused(
            "a managed identity cannot be set by a connection string (the Kusto documentation \
             says so too); call with_managed_identity on the builder",
        ),
    },
    Keyword {
        name: "dSTS Federated Security",
        aliases: &["dstsfed", "dststokentype"],
        meaning: Meaning::Refused(
            "dSTS authentication is not supported; use an application key, a managed identity \
             or a token provider",
        ),
    },
    Keyword {
        name: "Data Source Uri",
        aliases: &["serveruri", "clusteruri"],
        meaning: Meaning::Refused(
            "is not supported (the Python SDK refuses it too); give the cluster URL as `Data Source`",
        ),
    },
    Keyword {
        name: "Namespace",
        aliases: &["ns"],
        meaning: Meaning::Refused("is not supported (the Python SDK refuses it too); remove it"),
    },
];

fn lookup(normalized: &str) -> Option<&'static Keyword> {
    KEYWORDS
        .iter()
        .find(|k| normalize(k.name) == normalized || k.aliases.contains(&normalized))
}

/// The keywords this parser accepts (those that set something, then those it ignores), for
/// the unknown-keyword error.
pub(crate) fn accepted_keywords() -> String {
    let sets: Vec<&str> = KEYWORDS
        .iter()
        .filter(|k| matches!(k.meaning, Meaning::Sets(_)))
        .map(|k| k.name)
        .collect();
    let ignored: Vec<&str> = KEYWORDS
        .iter()
        .filter(|k| matches!(k.meaning, Meaning::Ignored { .. }))
        .map(|k| k.name)
        .collect();
    format!("{}; ignored: {}", sets.join(", "), ignored.join(", "))
}

/// Keywords whose value is a secret (the Python SDK's `secret` flags in `kcsb.json`).
const SECRET_KEYWORDS: [&str; 9] = [
    "Application Key",
    "Application Token",
    "User Token",
    "Password",
    "Application Certificate Thumbprint",
    "Application Certificate Subject Distinguished Name",
    "Application Certificate Issuer Distinguished Name",
    "Application Certificate Private Key",
    "Application Certificate Blob",
];

fn is_secret(normalized: &str) -> bool {
    lookup(normalized).is_some_and(|k| SECRET_KEYWORDS.contains(&k.name))
}

fn normalize(keyword: &str) -> String {
    keyword
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '_')
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
    /// The leading-URI form: the value was written without a keyword. Its text is never shown
    /// in an error (it may be anything pasted at the front, a secret included).
    implicit: bool,
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
            if index == 1 && !part.is_empty() {
                // The leading-URI form of the documentation and the SDKs: a first segment
                // without `=` is the Data Source (`https://help.kusto.windows.net/Samples;
                // Fed=true`), as the Python SDK's `KustoConnectionStringBuilder` reads it.
                out.push(Part {
                    index,
                    keyword: "Data Source".to_string(),
                    value: part.to_string(),
                    after_secret: None,
                    implicit: true,
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
        let is_secret = is_secret(&normalize(&key));
        out.push(Part {
            index,
            keyword: key.clone(),
            value,
            after_secret: after_secret.clone(),
            implicit: false,
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
        let Some(entry) = lookup(&normalize(&kw)) else {
            return Err(part.error("is not a known keyword", || {
                ConnectionStringError::UnknownKeyword {
                    keyword: kw.clone(),
                }
            }));
        };
        let key = match entry.meaning {
            Meaning::Sets(key) => key,
            Meaning::Ignored { .. } => Key::Ignored(entry.name),
            Meaning::Refused(hint) => {
                return Err(part.error(
                    "names an authentication method or option this crate does not support",
                    || ConnectionStringError::Unsupported {
                        keyword: kw.clone(),
                        hint,
                    },
                ));
            }
        };
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
                if value.starts_with('@') {
                    return Err(bad_url(format!(
                        "({} characters, not shown: the `@cluster/database` shorthand of the Kusto tools names no URL)",
                        value.chars().count()
                    )));
                }
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
                    return Err(bad_url(if part.implicit {
                        format!(
                            "({} characters, not shown: written without a keyword, it is not an http(s) URL)",
                            value.chars().count()
                        )
                    } else {
                        crate::config::redact_url(&value)
                    }));
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
            Key::Ignored(_) => {
                if matches!(entry.meaning, Meaning::Ignored { boolean: true }) {
                    parse_bool(&kw, &value)
                        .map_err(|plain| part.error("is not true or false", || plain))?;
                }
            }
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
        // `Federated` is an alias; `Domain Hint` is the authority, as the Python SDK reads it.
        let cs =
            parse("Data Source=https://x.kusto.windows.net;Federated=True;Domain Hint=contoso.com")
                .unwrap();
        assert_eq!(cs.federated, Some(true));
        assert_eq!(cs.authority.as_deref(), Some("contoso.com"));
        // A first segment that is not a URL is a Data Source error, its text not shown.
        let e = parse("justtext;Initial Catalog=db").unwrap_err();
        assert!(
            matches!(&e, ConnectionStringError::InvalidValue { keyword, value, .. }
                if keyword == "Data Source" && !value.contains("justtext")),
            "{e:?}"
        );
        // A leading segment with another scheme is not shown either (it may be anything).
        let e = parse("hunter2:abc;Initial Catalog=db").unwrap_err();
        assert!(!format!("{e} {e:?}").contains("hunter2"), "{e}");
        // The tools' `@cluster/db` shorthand names no URL.
        let e = parse("@help/Samples").unwrap_err();
        assert!(e.to_string().contains("shorthand"), "{e}");
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
