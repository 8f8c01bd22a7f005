//! The server address a person types, as the app will use it: `https://` unless they typed
//! `http://` themselves, and whether what crosses the network is readable by others on
//! the way (plain HTTP to anything but this machine or a private network).

use std::net::IpAddr;

use serde::Serialize;
use url::{Host, Url};

/// How the password and the session token travel to the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
#[serde(rename_all = "snake_case")]
pub enum Transport {
    /// HTTPS.
    Encrypted,
    /// Plain HTTP to this machine or a private network (a server at home or in the office).
    LocalCleartext,
    /// Plain HTTP across the internet: anyone on the way can read the password and token.
    Cleartext,
}

/// A typed address, checked and normalized.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerAddress {
    /// `scheme://host[:port]`, no path, no trailing slash.
    pub url: String,
    pub transport: Transport,
}

/// What the sign-in screen shows about the chosen server.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[cfg_attr(feature = "ts", derive(ts_rs::TS))]
pub struct ServerSecurity {
    pub transport: Transport,
    /// Said on the sign-in screen when the connection is not private.
    pub warning: Option<String>,
}

/// Parses what the person typed. No scheme means `https://`; `http://` only when typed.
pub fn parse(input: &str) -> Result<ServerAddress, String> {
    let trimmed = input.trim();
    if trimmed.is_empty() {
        return Err("Enter the address of your ChatApp server.".into());
    }
    let with_scheme = if trimmed.contains("://") {
        trimmed.to_owned()
    } else {
        format!("https://{trimmed}")
    };
    let url =
        Url::parse(&with_scheme).map_err(|e| format!("“{trimmed}” is not an address ({e})."))?;
    if !matches!(url.scheme(), "http" | "https") {
        return Err(format!(
            "“{trimmed}” is not a web address: use https:// (or http:// for a server on your own network)."
        ));
    }
    if !url.username().is_empty() || url.password().is_some() {
        return Err(
            "Leave the user name and password out of the address: you sign in on the next screen."
                .into(),
        );
    }
    if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
        return Err(format!(
            "“{trimmed}” has a path; type only the server, e.g. https://chat.example.org."
        ));
    }
    let Some(host) = url.host() else {
        return Err(format!("“{trimmed}” names no server."));
    };
    let transport = if url.scheme() == "https" {
        Transport::Encrypted
    } else if is_local(&host) {
        Transport::LocalCleartext
    } else {
        Transport::Cleartext
    };
    let mut base = format!("{}://{}", url.scheme(), url.host_str().unwrap_or_default());
    if let Some(port) = url.port() {
        base.push_str(&format!(":{port}"));
    }
    Ok(ServerAddress {
        url: base,
        transport,
    })
}

/// This machine or a private network: loopback, RFC 1918, link-local, unique local
/// (fc00::/7), CGNAT (100.64/10, as VPNs such as Tailscale use), `localhost`, `*.local`.
fn is_local(host: &Host<&str>) -> bool {
    match host {
        Host::Domain(d) => {
            let d = d.to_ascii_lowercase();
            d == "localhost" || d.ends_with(".localhost") || d.ends_with(".local")
        }
        Host::Ipv4(ip) => local_ip(IpAddr::V4(*ip)),
        Host::Ipv6(ip) => local_ip(IpAddr::V6(*ip)),
    }
}

fn local_ip(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => {
            let [a, b, ..] = v4.octets();
            v4.is_loopback()
                || v4.is_private()
                || v4.is_link_local()
                || (a == 100 && (64..128).contains(&b))
        }
        IpAddr::V6(v6) => {
            if let Some(v4) = v6.to_ipv4_mapped() {
                return local_ip(IpAddr::V4(v4));
            }
            let first = v6.segments()[0];
            v6.is_loopback() || (first & 0xfe00) == 0xfc00 || (first & 0xffc0) == 0xfe80
        }
    }
}

/// The sign-in screen's word on an address kept earlier.
pub fn security(url: &str) -> ServerSecurity {
    let transport = parse(url)
        .map(|a| a.transport)
        .unwrap_or(Transport::Cleartext);
    let warning = (transport == Transport::Cleartext).then(|| {
        format!(
            "This server is reached without encryption ({url}). Your password and messages can be read by anyone on the network between you and it. Ask whoever runs it for an https:// address."
        )
    });
    ServerSecurity { transport, warning }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(input: &str) -> (String, Transport) {
        let a = parse(input).unwrap_or_else(|e| panic!("{input:?} refused: {e}"));
        (a.url, a.transport)
    }

    #[test]
    fn no_scheme_means_https() {
        assert_eq!(
            ok("chat.example.org"),
            ("https://chat.example.org".into(), Transport::Encrypted)
        );
        assert_eq!(
            ok("  chat.example.org:8443/ "),
            ("https://chat.example.org:8443".into(), Transport::Encrypted)
        );
        // Even a local address: plain HTTP is only ever what someone typed.
        assert_eq!(
            ok("127.0.0.1:8080"),
            ("https://127.0.0.1:8080".into(), Transport::Encrypted)
        );
        assert_eq!(
            ok("HTTPS://Chat.Example.ORG"),
            ("https://chat.example.org".into(), Transport::Encrypted)
        );
    }

    #[test]
    fn plain_http_is_local_only_on_this_machine_or_a_private_network() {
        for local in [
            "http://127.0.0.1:8080",
            "http://localhost:8080",
            "http://[::1]:8080",
            "http://10.1.2.3",
            "http://172.16.0.9",
            "http://192.168.1.20:8080",
            "http://169.254.0.5",
            "http://100.100.1.1",
            "http://[fd00::1]",
            "http://[fe80::1]",
            "http://[::ffff:192.168.1.2]",
            "http://chat.local",
        ] {
            assert_eq!(ok(local).1, Transport::LocalCleartext, "{local}");
            assert_eq!(security(&ok(local).0).warning, None, "{local}");
        }
        for remote in [
            "http://chat.example.org",
            "http://8.8.8.8",
            "http://172.32.0.1",
            "http://100.128.0.1",
            "http://[2001:db8::1]",
            "http://localhost.example.org",
        ] {
            assert_eq!(ok(remote).1, Transport::Cleartext, "{remote}");
            let warning = security(&ok(remote).0).warning.expect("a warning");
            assert!(warning.contains("without encryption"), "{warning}");
        }
        assert_eq!(security("https://chat.example.org").warning, None);
    }

    #[test]
    fn what_is_not_a_server_address_is_refused() {
        for bad in [
            "",
            "   ",
            "ftp://chat.example.org",
            "javascript:alert(1)",
            "https://chat.example.org/path",
            "https://chat.example.org/?q=1",
            "https://user:pw@chat.example.org",
            "https://",
            "file:///etc/passwd",
        ] {
            assert!(parse(bad).is_err(), "{bad:?} accepted");
        }
    }
}
