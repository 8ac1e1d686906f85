//! Static files compiled into the binary: nothing is fetched from elsewhere at run time.

use axum::extract::Path;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};

/// (name, content type, bytes)
const FILES: &[(&str, &str, &[u8])] = &[
    ("app.css", "text/css; charset=utf-8", include_bytes!("../../assets/app.css")),
    ("app.js", "text/javascript; charset=utf-8", include_bytes!("../../assets/app.js")),
    ("favicon.svg", "image/svg+xml", include_bytes!("../../assets/favicon.svg")),
    // Vendored unmodified by scripts/vendor-refresh (version and license in assets/vendor/).
    (
        "vendor/lightweight-charts.js",
        "text/javascript; charset=utf-8",
        include_bytes!("../../assets/vendor/lightweight-charts.js"),
    ),
];

pub async fn serve(Path(file): Path<String>) -> Response {
    serve_file(&file)
}

pub async fn serve_vendor(Path(file): Path<String>) -> Response {
    serve_file(&format!("vendor/{file}"))
}

fn serve_file(file: &str) -> Response {
    match FILES.iter().find(|(name, _, _)| *name == file) {
        Some((_, content_type, bytes)) => (
            [(header::CONTENT_TYPE, *content_type), (header::CACHE_CONTROL, "public, max-age=300")],
            *bytes,
        )
            .into_response(),
        None => (StatusCode::NOT_FOUND, "no such file").into_response(),
    }
}
