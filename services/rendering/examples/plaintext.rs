//! The ceiling of any HTTP endpoint on this machine: actix-web answering a fixed text, with the same number of
//! workers as the services and none of their middleware. `loadtests/bench_rendering.py` measures show-code against
//! it in the same run. Usage: `plaintext [port]` (default 18090); stops on SIGINT or SIGTERM.

use actix_web::{App, HttpResponse, HttpServer, web};

#[actix_web::main]
async fn main() -> std::io::Result<()> {
    let port: u16 = std::env::args()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(18090);
    HttpServer::new(|| {
        App::new().route(
            "/plaintext",
            web::get().to(|| async {
                HttpResponse::Ok()
                    .content_type("text/plain")
                    .body("Hello, World!")
            }),
        )
    })
    .bind(("127.0.0.1", port))?
    .run()
    .await
}
