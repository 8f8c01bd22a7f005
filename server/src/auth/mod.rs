//! Who is asking: session tokens (random, stored only as SHA-256 hashes), the session
//! cookie and its CSRF token, the same-origin check, the client's address behind
//! trusted proxies, and the [`AuthUser`] extractor every protected handler takes.

pub mod limits;
pub mod password;
pub mod routes;

use std::net::{IpAddr, SocketAddr};

use axum::{
    extract::{ConnectInfo, FromRequestParts},
    http::{HeaderMap, Method, header, request::Parts},
};
use axum_extra::extract::cookie::{Cookie, CookieJar, SameSite};
use base64::{Engine, engine::general_purpose::URL_SAFE_NO_PAD};
use hmac::{Hmac, Mac};
use rand::RngCore;
use sha2::{Digest, Sha256};

use crate::{AppState, error::ApiError, store::UserRow};

pub const SESSION_COOKIE: &str = "chatapp_session";
pub const CSRF_COOKIE: &str = "chatapp_csrf";
pub const CSRF_HEADER: &str = "x-csrf-token";
/// Browsers keep the session cookie this long.
const COOKIE_DAYS: i64 = 30;

/// A new random session token (256 bits, URL-safe base64).
pub fn new_token() -> String {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    URL_SAFE_NO_PAD.encode(bytes)
}

/// What the database keeps of a token.
pub fn token_hash(token: &str) -> String {
    let digest = Sha256::digest(token.as_bytes());
    digest.iter().map(|b| format!("{b:02x}")).collect()
}

/// The CSRF token bound to a session token: HMAC-SHA256 under the server's secret.
pub fn csrf_token(secret: &[u8], session_token: &str) -> String {
    URL_SAFE_NO_PAD.encode(csrf_mac(secret, session_token).finalize().into_bytes())
}

fn csrf_mac(secret: &[u8], session_token: &str) -> Hmac<Sha256> {
    let mut mac = <Hmac<Sha256> as Mac>::new_from_slice(secret).expect("HMAC takes any key length");
    mac.update(b"chatapp csrf\0");
    mac.update(session_token.as_bytes());
    mac
}

fn csrf_valid(secret: &[u8], session_token: &str, presented: &str) -> bool {
    match URL_SAFE_NO_PAD.decode(presented) {
        Ok(bytes) => csrf_mac(secret, session_token).verify_slice(&bytes).is_ok(),
        Err(_) => false,
    }
}

/// The signed-in user of a request, from `Authorization: Bearer` or the session cookie.
/// Cookie requests that change state must be same-origin and carry the CSRF token.
#[derive(Debug, Clone)]
pub struct AuthUser {
    pub user: UserRow,
    pub session_id: i64,
    /// Authenticated by the session cookie (a browser), not a bearer token.
    pub via_cookie: bool,
}

impl AuthUser {
    pub fn id(&self) -> i64 {
        self.user.id
    }
}

impl FromRequestParts<AppState> for AuthUser {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let via_cookie;
        let token = match bearer_token(&parts.headers)? {
            Some(token) => {
                via_cookie = false;
                token.to_owned()
            }
            None => {
                let jar = CookieJar::from_headers(&parts.headers);
                let token = jar
                    .get(SESSION_COOKIE)
                    .map(|c| c.value().to_owned())
                    .ok_or(ApiError::Unauthorized)?;
                if !is_safe(&parts.method) {
                    check_same_origin(&parts.headers, state)?;
                    let presented = parts
                        .headers
                        .get(CSRF_HEADER)
                        .and_then(|v| v.to_str().ok())
                        .ok_or_else(|| ApiError::Forbidden("missing CSRF token".into()))?;
                    if !csrf_valid(&state.secret, &token, presented) {
                        return Err(ApiError::Forbidden("invalid CSRF token".into()));
                    }
                }
                via_cookie = true;
                token
            }
        };
        let (session_id, user) = state
            .store
            .session_user(&token_hash(&token))
            .await?
            .ok_or(ApiError::Unauthorized)?;
        Ok(Self {
            user,
            session_id,
            via_cookie,
        })
    }
}

fn is_safe(method: &Method) -> bool {
    matches!(*method, Method::GET | Method::HEAD | Method::OPTIONS)
}

/// `Some(token)` for `Authorization: Bearer <token>`; 401 for any other `Authorization`.
fn bearer_token(headers: &HeaderMap) -> Result<Option<&str>, ApiError> {
    let Some(value) = headers.get(header::AUTHORIZATION) else {
        return Ok(None);
    };
    let value = value.to_str().map_err(|_| ApiError::Unauthorized)?;
    match value.split_once(' ') {
        Some((scheme, token))
            if scheme.eq_ignore_ascii_case("bearer") && !token.trim().is_empty() =>
        {
            Ok(Some(token.trim()))
        }
        _ => Err(ApiError::Unauthorized),
    }
}

/// Refuses a request whose `Origin` is not this server's (public origin when configured,
/// else the request's own `Host`). A missing `Origin` is refused too.
pub fn check_same_origin(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    let origin = headers
        .get(header::ORIGIN)
        .and_then(|v| v.to_str().ok())
        .ok_or_else(|| ApiError::Forbidden("missing Origin header".into()))?;
    if origin_allowed(origin, headers, state.config.public_origin.as_deref()) {
        Ok(())
    } else {
        Err(ApiError::Forbidden("cross-origin request refused".into()))
    }
}

/// Like [`check_same_origin`], but a request without `Origin` (not a browser) passes.
pub fn check_origin_if_present(headers: &HeaderMap, state: &AppState) -> Result<(), ApiError> {
    if headers.contains_key(header::ORIGIN) {
        check_same_origin(headers, state)
    } else {
        Ok(())
    }
}

fn origin_allowed(origin: &str, headers: &HeaderMap, public_origin: Option<&str>) -> bool {
    if let Some(public) = public_origin {
        return origin.eq_ignore_ascii_case(public.trim_end_matches('/'));
    }
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    match origin.split_once("://") {
        Some((scheme, authority)) => {
            matches!(scheme, "http" | "https") && authority.eq_ignore_ascii_case(host)
        }
        None => false,
    }
}

/// The client's address: the peer, or — when the peer is a trusted proxy — the nearest
/// untrusted address in `X-Forwarded-For`.
#[derive(Debug, Clone, Copy)]
pub struct ClientAddr(pub IpAddr);

impl FromRequestParts<AppState> for ClientAddr {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, ApiError> {
        let peer = parts
            .extensions
            .get::<ConnectInfo<SocketAddr>>()
            .map(|ConnectInfo(addr)| addr.ip())
            .unwrap_or(IpAddr::from([0, 0, 0, 0]));
        Ok(Self(client_ip(
            peer,
            &parts.headers,
            &state.config.trusted_proxies,
        )))
    }
}

fn client_ip(peer: IpAddr, headers: &HeaderMap, trusted: &[ipnet::IpNet]) -> IpAddr {
    let is_trusted = |ip: &IpAddr| trusted.iter().any(|net| net.contains(ip));
    if !is_trusted(&peer) {
        return peer;
    }
    let forwarded: Vec<IpAddr> = headers
        .get_all("x-forwarded-for")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(','))
        .filter_map(|s| s.trim().parse().ok())
        .collect();
    forwarded
        .into_iter()
        .rev()
        .find(|ip| !is_trusted(ip))
        .unwrap_or(peer)
}

/// Whether cookies should be `Secure`: the public origin is HTTPS, or a configured proxy
/// says the client came over HTTPS.
pub fn is_https(headers: &HeaderMap, config: &crate::config::Config) -> bool {
    if config
        .public_origin
        .as_deref()
        .is_some_and(|o| o.starts_with("https://"))
    {
        return true;
    }
    !config.trusted_proxies.is_empty()
        && headers
            .get("x-forwarded-proto")
            .and_then(|v| v.to_str().ok())
            .is_some_and(|p| p.eq_ignore_ascii_case("https"))
}

/// The session and CSRF cookies for a new session.
pub fn session_cookies(token: &str, csrf: &str, secure: bool) -> [Cookie<'static>; 2] {
    let session = Cookie::build((SESSION_COOKIE, token.to_owned()))
        .path("/")
        .http_only(true)
        .same_site(SameSite::Lax)
        .secure(secure)
        .max_age(time::Duration::days(COOKIE_DAYS))
        .build();
    let csrf = Cookie::build((CSRF_COOKIE, csrf.to_owned()))
        .path("/")
        .same_site(SameSite::Strict)
        .secure(secure)
        .max_age(time::Duration::days(COOKIE_DAYS))
        .build();
    [session, csrf]
}

/// Cookies that make the browser forget the session.
pub fn expired_cookies() -> [Cookie<'static>; 2] {
    [SESSION_COOKIE, CSRF_COOKIE].map(|name| {
        Cookie::build((name, ""))
            .path("/")
            .max_age(time::Duration::ZERO)
            .build()
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use axum::http::HeaderValue;

    #[test]
    fn tokens_are_random_and_hashes_stable() {
        let a = new_token();
        assert_ne!(a, new_token());
        assert_eq!(a.len(), 43);
        assert_eq!(token_hash(&a), token_hash(&a));
        assert_eq!(token_hash(&a).len(), 64);
    }

    #[test]
    fn csrf_token_is_bound_to_session_and_secret() {
        let t = csrf_token(b"secret", "session-a");
        assert!(csrf_valid(b"secret", "session-a", &t));
        assert!(!csrf_valid(b"secret", "session-b", &t));
        assert!(!csrf_valid(b"other", "session-a", &t));
        assert!(!csrf_valid(b"secret", "session-a", "not base64 !"));
    }

    #[test]
    fn origin_must_match_host_or_public_origin() {
        let mut h = HeaderMap::new();
        h.insert(header::HOST, HeaderValue::from_static("127.0.0.1:8080"));
        assert!(origin_allowed("http://127.0.0.1:8080", &h, None));
        assert!(!origin_allowed("http://evil.example", &h, None));
        assert!(!origin_allowed("null", &h, None));
        assert!(origin_allowed(
            "https://chat.example.org",
            &h,
            Some("https://chat.example.org/")
        ));
        assert!(!origin_allowed(
            "http://127.0.0.1:8080",
            &h,
            Some("https://chat.example.org")
        ));
    }

    #[test]
    fn forwarded_for_is_used_only_from_trusted_proxies() {
        let mut h = HeaderMap::new();
        h.insert(
            "x-forwarded-for",
            HeaderValue::from_static("1.2.3.4, 10.0.0.5"),
        );
        let proxy: IpAddr = [10, 0, 0, 9].into();
        let trusted: Vec<ipnet::IpNet> = vec!["10.0.0.0/8".parse().expect("net")];
        assert_eq!(client_ip(proxy, &h, &trusted), IpAddr::from([1, 2, 3, 4]));
        assert_eq!(client_ip(proxy, &h, &[]), proxy);
        let stranger: IpAddr = [5, 6, 7, 8].into();
        assert_eq!(client_ip(stranger, &h, &trusted), stranger);
    }
}
