//! The extractors every handler uses instead of axum's own, so that a rejected request
//! gets our error shape (`ApiError`): JSON bodies (with the field path of a data error and
//! no NUL in any string), path and query parameters (no NUL), and multipart forms (415
//! when the request is not one).

use axum::{
    Json,
    extract::{FromRequest, FromRequestParts, Multipart, Path, Query, Request},
    http::{header, request::Parts},
    response::{IntoResponse, Response},
};
use serde::de::DeserializeOwned;

use crate::error::ApiError;

/// `Multipart` whose rejections use our error shape: a request that is not
/// `multipart/form-data` gets 415, a form without a usable boundary 400.
#[derive(Debug)]
pub struct ApiMultipart(pub Multipart);

impl<S: Send + Sync> FromRequest<S> for ApiMultipart {
    type Rejection = ApiError;

    async fn from_request(request: Request, state: &S) -> Result<Self, ApiError> {
        let is_form = request
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|value| value.to_str().ok())
            .is_some_and(|value| {
                value
                    .trim_start()
                    .to_ascii_lowercase()
                    .starts_with("multipart/form-data")
            });
        if !is_form {
            return Err(ApiError::UnsupportedMediaType(
                "expected Content-Type: multipart/form-data".into(),
            ));
        }
        Multipart::from_request(request, state)
            .await
            .map(Self)
            .map_err(|rejection| ApiError::validation("invalid_multipart", rejection.body_text()))
    }
}

/// `Json<T>` whose rejections use our error shape. This is where JSON text enters the
/// API: a string with U+0000 anywhere in the body is refused here (400 `invalid_text`).
#[derive(Debug, Clone, Copy, Default)]
pub struct ApiJson<T>(pub T);

impl<T, S> FromRequest<S> for ApiJson<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        let Json(value) = Json::<serde_json::Value>::from_request(req, state).await?;
        if crate::text::json_has_nul(&value) {
            return Err(crate::text::nul_refused().into());
        }
        serde_path_to_error::deserialize(value)
            .map(Self)
            .map_err(|err| Self::data_error(err.path().to_string(), err.into_inner()))
    }
}

impl<T> ApiJson<T> {
    fn data_error(path: String, err: serde_json::Error) -> ApiError {
        let message = if path == "." {
            format!("Failed to deserialize the JSON body into the target type: {err}")
        } else {
            format!("Failed to deserialize the JSON body into the target type: {path}: {err}")
        };
        ApiError::validation("invalid_body", message)
    }
}

impl<T: serde::Serialize> IntoResponse for ApiJson<T> {
    fn into_response(self) -> Response {
        Json(self.0).into_response()
    }
}

/// `Path<T>` whose rejections use our error shape; a segment with U+0000 is refused.
#[derive(Debug, Clone, Copy)]
pub struct ApiPath<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiPath<T>
where
    T: DeserializeOwned + Send,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &S) -> Result<Self, ApiError> {
        let Path(segments) =
            Path::<Vec<(String, String)>>::from_request_parts(parts, state).await?;
        for (_, value) in &segments {
            crate::text::check_no_nul(value)?;
        }
        let Path(value) = Path::<T>::from_request_parts(parts, state).await?;
        Ok(Self(value))
    }
}

/// `Query<T>` whose rejections use our error shape; a parameter with U+0000 is refused.
#[derive(Debug, Clone, Copy)]
pub struct ApiQuery<T>(pub T);

impl<T, S> FromRequestParts<S> for ApiQuery<T>
where
    T: DeserializeOwned,
    S: Send + Sync,
{
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, _state: &S) -> Result<Self, ApiError> {
        let Query(pairs) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri)?;
        for (key, value) in &pairs {
            crate::text::check_no_nul(key)?;
            crate::text::check_no_nul(value)?;
        }
        let Query(value) = Query::<T>::try_from_uri(&parts.uri)?;
        Ok(Self(value))
    }
}
