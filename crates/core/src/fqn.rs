//! [`SourceFqn`]: the fully qualified name of where an event comes from.
//!
//! A source FQN is a `#`-separated list of `TYPE=name` pairs, innermost first, each one
//! contained in the next: `APPL=shop#SERVER=web1#DATACENTER=dc1` reads "the application
//! `shop` on the server `web1` in the data centre `dc1`". This is the jKool / TNT4J convention
//! (see the Python jKool streaming libraries (jKool PythonStreaming, TNT4PY)); logship carries it for every backend.
//!
//! ```
//! use logship_core::SourceFqn;
//! let fqn: SourceFqn = "APPL=shop#SERVER=web1#DATACENTER=dc1".parse()?;
//! assert_eq!(fqn.get(logship_core::SourceType::Server), Some("web1"));
//! assert_eq!(fqn.to_string(), "APPL=shop#SERVER=web1#DATACENTER=dc1");
//! # Ok::<(), logship_core::FqnError>(())
//! ```

use std::fmt;
use std::str::FromStr;
use std::sync::Arc;

/// The source types of a [`SourceFqn`], from the jKool model.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum SourceType {
    /// `USER`: a user.
    User,
    /// `APPL`: an application.
    Appl,
    /// `PROCESS`: an operating-system process.
    Process,
    /// `APPSERVER`: an application server.
    AppServer,
    /// `SERVER`: a host.
    Server,
    /// `RUNTIME`: a language runtime or VM.
    Runtime,
    /// `VIRTUAL`: a virtual machine or container.
    Virtual,
    /// `NETWORK`: a network.
    Network,
    /// `DEVICE`: a device.
    Device,
    /// `NETADDR`: a network address.
    NetAddr,
    /// `GEOADDR`: a geographic location, e.g. `lat,lon`.
    GeoAddr,
    /// `DATACENTER`: a data centre.
    DataCenter,
    /// `DATASTORE`: a data store.
    DataStore,
    /// `CACHE`: a cache.
    Cache,
    /// `SERVICE`: a service.
    Service,
    /// `QUEUE`: a queue.
    Queue,
}

impl SourceType {
    /// Every type, in the order the jKool model lists them.
    pub const ALL: [SourceType; 16] = [
        Self::User,
        Self::Appl,
        Self::Process,
        Self::AppServer,
        Self::Server,
        Self::Runtime,
        Self::Virtual,
        Self::Network,
        Self::Device,
        Self::NetAddr,
        Self::GeoAddr,
        Self::DataCenter,
        Self::DataStore,
        Self::Cache,
        Self::Service,
        Self::Queue,
    ];

    /// The upper-case name used on the wire, e.g. `APPL`.
    pub const fn as_str(self) -> &'static str {
        match self {
            Self::User => "USER",
            Self::Appl => "APPL",
            Self::Process => "PROCESS",
            Self::AppServer => "APPSERVER",
            Self::Server => "SERVER",
            Self::Runtime => "RUNTIME",
            Self::Virtual => "VIRTUAL",
            Self::Network => "NETWORK",
            Self::Device => "DEVICE",
            Self::NetAddr => "NETADDR",
            Self::GeoAddr => "GEOADDR",
            Self::DataCenter => "DATACENTER",
            Self::DataStore => "DATASTORE",
            Self::Cache => "CACHE",
            Self::Service => "SERVICE",
            Self::Queue => "QUEUE",
        }
    }

    fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }
}

impl fmt::Display for SourceType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why a string is not a valid source FQN. The message says what to fix.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum FqnError {
    /// The string is empty.
    #[error("source FQN is empty; expected `TYPE=name#TYPE=name…`, e.g. `APPL=shop#SERVER=web1`")]
    Empty,
    /// A `#`-separated part has no `=`.
    #[error("source FQN part {index} `{part}` has no `=`; each part is `TYPE=name`")]
    MissingEquals {
        /// 0-based position of the part.
        index: usize,
        /// The offending part.
        part: String,
    },
    /// A part names a type that is not one of the known source types.
    #[error(
        "source FQN part {index} has unknown type `{ty}`; use one of USER, APPL, PROCESS, \
         APPSERVER, SERVER, RUNTIME, VIRTUAL, NETWORK, DEVICE, NETADDR, GEOADDR, DATACENTER, \
         DATASTORE, CACHE, SERVICE, QUEUE"
    )]
    UnknownType {
        /// 0-based position of the part.
        index: usize,
        /// The unknown type as written.
        ty: String,
    },
    /// A part has an empty name (`SERVER=`).
    #[error("source FQN part {index} (`{ty}`) has an empty name")]
    EmptyName {
        /// 0-based position of the part.
        index: usize,
        /// The part's type.
        ty: SourceType,
    },
    /// A name contains `#` or `=`, which the format cannot carry.
    #[error("source FQN name `{name}` contains `{ch}`, which cannot be escaped in the format")]
    ReservedChar {
        /// The offending name.
        name: String,
        /// The reserved character.
        ch: char,
    },
    /// The same type appears twice; containment is left to right, so each level appears once.
    #[error(
        "source FQN names type `{ty}` twice (parts {first} and {second}); each level appears once"
    )]
    DuplicateType {
        /// The repeated type.
        ty: SourceType,
        /// Position of the first occurrence.
        first: usize,
        /// Position of the second occurrence.
        second: usize,
    },
}

/// A validated source FQN (see the [module docs](self)). Cheap to clone (shared).
#[derive(Clone, PartialEq, Eq, Hash)]
pub struct SourceFqn {
    text: Arc<str>,
    parts: Arc<[(SourceType, Box<str>)]>,
}

impl SourceFqn {
    /// Parses and validates `TYPE=name#TYPE=name…`. Surrounding whitespace of each part is
    /// trimmed; types are case-insensitive and normalised to upper case.
    ///
    /// # Errors
    /// [`FqnError`] naming the part and what is wrong with it.
    pub fn parse(s: &str) -> Result<Self, FqnError> {
        let s = s.trim();
        if s.is_empty() {
            return Err(FqnError::Empty);
        }
        let mut parts: Vec<(SourceType, Box<str>)> = Vec::new();
        for (index, part) in s.split('#').enumerate() {
            let Some((ty, name)) = part.split_once('=') else {
                return Err(FqnError::MissingEquals {
                    index,
                    part: part.to_string(),
                });
            };
            let ty_str = ty.trim().to_ascii_uppercase();
            let ty = SourceType::parse(&ty_str).ok_or(FqnError::UnknownType {
                index,
                ty: ty.trim().to_string(),
            })?;
            let name = name.trim();
            if name.is_empty() {
                return Err(FqnError::EmptyName { index, ty });
            }
            if name.contains('=') {
                return Err(FqnError::ReservedChar {
                    name: name.to_string(),
                    ch: '=',
                });
            }
            if let Some(first) = parts.iter().position(|(t, _)| *t == ty) {
                return Err(FqnError::DuplicateType {
                    ty,
                    first,
                    second: index,
                });
            }
            parts.push((ty, name.into()));
        }
        Ok(Self::from_parts_unchecked(parts))
    }

    /// Builds from `(type, name)` pairs, innermost first.
    ///
    /// # Errors
    /// As [`SourceFqn::parse`]: empty list, empty name, a name with `#` or `=`, a repeated type.
    pub fn from_parts<I, N>(parts: I) -> Result<Self, FqnError>
    where
        I: IntoIterator<Item = (SourceType, N)>,
        N: Into<String>,
    {
        let mut out: Vec<(SourceType, Box<str>)> = Vec::new();
        for (index, (ty, name)) in parts.into_iter().enumerate() {
            let name: String = name.into();
            let name = name.trim();
            if name.is_empty() {
                return Err(FqnError::EmptyName { index, ty });
            }
            for ch in ['#', '='] {
                if name.contains(ch) {
                    return Err(FqnError::ReservedChar {
                        name: name.to_string(),
                        ch,
                    });
                }
            }
            if let Some(first) = out.iter().position(|(t, _)| *t == ty) {
                return Err(FqnError::DuplicateType {
                    ty,
                    first,
                    second: index,
                });
            }
            out.push((ty, name.into()));
        }
        if out.is_empty() {
            return Err(FqnError::Empty);
        }
        Ok(Self::from_parts_unchecked(out))
    }

    fn from_parts_unchecked(parts: Vec<(SourceType, Box<str>)>) -> Self {
        let text = parts
            .iter()
            .map(|(t, n)| format!("{}={}", t.as_str(), n))
            .collect::<Vec<_>>()
            .join("#");
        Self {
            text: text.into(),
            parts: parts.into(),
        }
    }

    /// The default for a service: `APPL=<service>#SERVER=<hostname>`.
    ///
    /// # Errors
    /// When `service` or the host name is empty or contains `#` / `=`.
    pub fn for_service(service: &str, hostname: &str) -> Result<Self, FqnError> {
        Self::from_parts([(SourceType::Appl, service), (SourceType::Server, hostname)])
    }

    /// The `(type, name)` pairs, innermost first.
    pub fn parts(&self) -> impl ExactSizeIterator<Item = (SourceType, &str)> + '_ {
        self.parts.iter().map(|(t, n)| (*t, &**n))
    }

    /// The name at level `ty`, if present.
    pub fn get(&self, ty: SourceType) -> Option<&str> {
        self.parts.iter().find(|(t, _)| *t == ty).map(|(_, n)| &**n)
    }

    /// The canonical text, `TYPE=name#…`.
    pub fn as_str(&self) -> &str {
        &self.text
    }
}

impl FromStr for SourceFqn {
    type Err = FqnError;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Self::parse(s)
    }
}

impl fmt::Display for SourceFqn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.text)
    }
}

impl fmt::Debug for SourceFqn {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "SourceFqn({})", self.text)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn parses_and_normalises() {
        let f = SourceFqn::parse(" appl=shop # SERVER=web1#DATACENTER=dc1 ").unwrap();
        assert_eq!(f.as_str(), "APPL=shop#SERVER=web1#DATACENTER=dc1");
        assert_eq!(f.get(SourceType::DataCenter), Some("dc1"));
        assert_eq!(f.parts().len(), 3);
    }

    #[test]
    fn geoaddr_keeps_commas() {
        let f = SourceFqn::parse("APPL=a#GEOADDR=52.5,13.4").unwrap();
        assert_eq!(f.get(SourceType::GeoAddr), Some("52.5,13.4"));
    }

    #[test]
    fn errors_say_what_is_wrong() {
        assert_eq!(SourceFqn::parse(""), Err(FqnError::Empty));
        let e = SourceFqn::parse("APPL=a#HOST=b").unwrap_err();
        assert!(e.to_string().contains("unknown type `HOST`"), "{e}");
        let e = SourceFqn::parse("APPL=a#SERVER").unwrap_err();
        assert!(e.to_string().contains("part 1 `SERVER` has no `=`"), "{e}");
        let e = SourceFqn::parse("APPL=a#SERVER=").unwrap_err();
        assert!(e.to_string().contains("empty name"), "{e}");
        let e = SourceFqn::parse("APPL=a#APPL=b").unwrap_err();
        assert!(e.to_string().contains("twice"), "{e}");
        let e = SourceFqn::parse("APPL=a=b").unwrap_err();
        assert!(matches!(e, FqnError::ReservedChar { ch: '=', .. }), "{e}");
    }

    fn name() -> impl Strategy<Value = String> {
        "[A-Za-z0-9_.,:/ -]{0,12}[A-Za-z0-9_.]".prop_map(|s| s.trim().to_string())
    }

    proptest! {
        #[test]
        fn round_trips(picks in proptest::sample::subsequence(SourceType::ALL.to_vec(), 1..6),
                       names in proptest::collection::vec(name(), 6)) {
            let parts: Vec<_> = picks.iter().copied().zip(names.iter().cloned()).collect();
            prop_assume!(parts.iter().all(|(_, n)| !n.trim().is_empty()));
            let fqn = SourceFqn::from_parts(parts.clone()).unwrap();
            let again = SourceFqn::parse(fqn.as_str()).unwrap();
            prop_assert_eq!(&again, &fqn);
            for (t, n) in parts {
                prop_assert_eq!(again.get(t), Some(n.trim()));
            }
        }

        #[test]
        fn never_panics(s in "\\PC{0,64}") {
            let _ = SourceFqn::parse(&s);
        }

        #[test]
        fn rejects_unknown_types(ty in "[A-Z]{2,10}", n in "[a-z]{1,5}") {
            prop_assume!(SourceType::parse(&ty).is_none());
            let text = format!("{ty}={n}");
            let rejected = matches!(SourceFqn::parse(&text), Err(FqnError::UnknownType { .. }));
            prop_assert!(rejected);
        }
    }
}
