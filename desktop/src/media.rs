//! `chatmedia://` — server files (photos, avatars) for `<img>` in the
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

/// The server path a `chatmedia` URI names, if it is a server file (`/api/files/{id}`).
/// The URI's path is decoded exactly once (it was encoded once, by `convertFileSrc`), and
/// the result must have the exact shape of a file path: nothing else is normalized or
/// passed on, so no encoding of `..`, slashes or another host gets through.
pub fn server_path(uri_path: &str) -> Option<String> {
    let decoded = percent_decode(uri_path.strip_prefix('/')?)?;
    chatapp_client::file_path(&decoded).map(str::to_owned)
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
        // Kept in memory while the page shows it, never written to the webview's disk
        // cache: a signed-out person's voice messages do not stay on the computer.
        .header(header::CACHE_CONTROL, "no-store")
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

    const ID: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn only_server_file_paths_are_served() {
        assert_eq!(
            server_path(&format!("/%2Fapi%2Ffiles%2F{ID}")),
            Some(format!("/api/files/{ID}"))
        );
        // The webview may leave the slashes unencoded.
        assert_eq!(
            server_path(&format!("//api/files/{ID}")),
            Some(format!("/api/files/{ID}"))
        );
        for bad in [
            "/%2Fapi%2Fme".to_owned(),
            "/%2Fapi%2Ffiles%2F..%2Fme".to_owned(),
            // Encoded once more than the handler decodes: the URL parser would turn
            // the rest into `..` (this answered /api/me before).
            "/%2Fapi%2Ffiles%2F%252e%252e%2Fme".to_owned(),
            "/%252Fapi%252Ffiles%252F..%252Fme".to_owned(),
            // Mixed: some escapes once, some twice, some raw.
            "/%2Fapi%2Ffiles%2F%2e%252e%2Fme".to_owned(),
            "/%2Fapi/files/%2E%2E/me".to_owned(),
            "/%2Fapi%2Ffiles%2F.%2e%2F%2e.%2Fme".to_owned(),
            // Backslashes, which URL parsers read as slashes.
            "/%2Fapi%2Ffiles%2F..%5Cme".to_owned(),
            "/%5Capi%5Cfiles%5C..%5Cme".to_owned(),
            "/%2Fapi%2Ffiles%2F%255c..%255cme".to_owned(),
            // Absolute and protocol-relative URLs, other hosts.
            format!("/https%3A%2F%2Fevil.example%2Fapi%2Ffiles%2F{ID}"),
            format!("/%2F%2Fevil.example%2Fapi%2Ffiles%2F{ID}"),
            format!("/http:%2F%2F127.0.0.1:8080%2Fapi%2Ffiles%2F{ID}"),
            // More than a file id: queries, fragments, segments, NUL, bad escapes.
            format!("/%2Fapi%2Ffiles%2F{ID}%3Fx%3D1"),
            format!("/%2Fapi%2Ffiles%2F{ID}%23x"),
            format!("/%2Fapi%2Ffiles%2F{ID}%2Fmore"),
            format!("/%2Fapi%2Ffiles%2F{ID}%00"),
            "/%2Fapi%2Ffiles%2F%zz".to_owned(),
            "/%2Fapi%2Ffiles%2F%ff%fe".to_owned(),
            "/%zz".to_owned(),
            String::new(),
        ] {
            assert_eq!(server_path(&bad), None, "{bad:?}");
        }
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
