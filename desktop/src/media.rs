//! `chatmedia://` — server files (voice messages, avatars) for `<audio>` and `<img>` in the
//! webview, fetched by the Rust side with the session's token, so the webview never
//! holds it. `chatmedia://localhost/<percent-encoded server path>` (on Windows
//! `http://chatmedia.localhost/…`), as `convertFileSrc(path, 'chatmedia')` builds it.

use tauri::http::{Response, StatusCode, header};
use tauri::{AppHandle, Manager, Runtime, UriSchemeContext, UriSchemeResponder};

use crate::session::Session;

pub const SCHEME: &str = "chatmedia";

/// Decodes `%XX` escapes (the path was encoded with `encodeURIComponent`).
pub fn percent_decode(s: &str) -> Option<String> {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = s.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

/// The server path a `chatmedia` URI names, if it is one we serve (`/api/files/…`).
pub fn server_path(uri_path: &str) -> Option<String> {
    let decoded = percent_decode(uri_path.trim_start_matches('/'))?;
    (decoded.starts_with("/api/files/") && !decoded.contains("..")).then_some(decoded)
}

fn reply(responder: UriSchemeResponder, status: StatusCode, mime: &str, body: Vec<u8>) {
    respond(responder, status, mime, None, body);
}

fn respond(
    responder: UriSchemeResponder,
    status: StatusCode,
    mime: &str,
    content_range: Option<&str>,
    body: Vec<u8>,
) {
    let mut resp = Response::builder()
        .status(status)
        .header(header::CONTENT_TYPE, mime)
        .header(header::ACCEPT_RANGES, "bytes")
        .header(header::CONTENT_LENGTH, body.len())
        .header("X-Content-Type-Options", "nosniff");
    if let Some(range) = content_range {
        resp = resp.header(header::CONTENT_RANGE, range);
    }
    let resp = resp
        .body(body)
        .unwrap_or_else(|_| Response::new(Vec::new()));
    responder.respond(resp);
}

/// The request's `Range` header, when it is one we pass on (`bytes=…`, ASCII).
pub fn range_of(headers: &tauri::http::HeaderMap) -> Option<String> {
    let value = headers.get(header::RANGE)?.to_str().ok()?.trim();
    (value.starts_with("bytes=") && value.len() <= 200).then(|| value.to_owned())
}

pub fn handle<R: Runtime>(
    ctx: UriSchemeContext<'_, R>,
    request: tauri::http::Request<Vec<u8>>,
    responder: UriSchemeResponder,
) {
    let app: AppHandle<R> = ctx.app_handle().clone();
    let Some(path) = server_path(request.uri().path()) else {
        reply(
            responder,
            StatusCode::NOT_FOUND,
            "text/plain",
            b"not found".to_vec(),
        );
        return;
    };
    // Media elements seek (and WebKit learns an audio file's length) with ranges: the
    // server answers them, so they are passed on and its 206 comes back as it is.
    let range = range_of(request.headers());
    tauri::async_runtime::spawn(async move {
        let api = match app.state::<Session>().authed() {
            Ok(api) => api,
            Err(_) => {
                reply(
                    responder,
                    StatusCode::UNAUTHORIZED,
                    "text/plain",
                    Vec::new(),
                );
                return;
            }
        };
        match api.download_range(&path, range.as_deref()).await {
            Ok(d) => {
                let mime = d
                    .content_type
                    .unwrap_or_else(|| "application/octet-stream".into());
                let status = StatusCode::from_u16(d.status.as_u16()).unwrap_or(StatusCode::OK);
                respond(
                    responder,
                    status,
                    &mime,
                    d.content_range.as_deref(),
                    d.bytes.to_vec(),
                );
            }
            Err(e) => {
                let status = e
                    .status()
                    .and_then(|s| StatusCode::from_u16(s.as_u16()).ok())
                    .unwrap_or(StatusCode::BAD_GATEWAY);
                reply(responder, status, "text/plain", Vec::new());
            }
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_server_file_paths_are_served() {
        assert_eq!(
            server_path("/%2Fapi%2Ffiles%2F42").as_deref(),
            Some("/api/files/42")
        );
        assert_eq!(server_path("/%2Fapi%2Fme"), None);
        assert_eq!(server_path("/%2Fapi%2Ffiles%2F..%2Fme"), None);
        assert_eq!(server_path("/%zz"), None);
    }

    #[test]
    fn byte_ranges_are_passed_on_and_nothing_else() {
        let mut h = tauri::http::HeaderMap::new();
        assert_eq!(range_of(&h), None);
        h.insert(
            header::RANGE,
            tauri::http::HeaderValue::from_static("bytes=0-"),
        );
        assert_eq!(range_of(&h).as_deref(), Some("bytes=0-"));
        h.insert(
            header::RANGE,
            tauri::http::HeaderValue::from_static("items=0-5"),
        );
        assert_eq!(range_of(&h), None);
    }
}
