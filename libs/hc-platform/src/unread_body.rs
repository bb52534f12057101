//! A refused request's unread body is held, not drained. When a request is answered before its body was read (a
//! 401 from the token extractor, a 405, a 413 on Content-Length, a shed 503, an import refused at its first long
//! line) and the handler drops the body, actix reads the rest of it to keep the connection alive: a chunked upload
//! or a lying Content-Length keeps the worker reading gigabytes for nothing. Held past the answer, the unread body
//! makes actix close the connection instead (after its one-second linger). A small body is still drained: reading a
//! few KiB is cheaper for everyone than a new connection.

use std::cell::RefCell;
use std::pin::Pin;
use std::rc::Rc;
use std::task::{Context, Poll};
use std::time::Duration;

use actix_web::HttpMessage;
use actix_web::body::MessageBody;
use actix_web::dev::{Payload, ServiceRequest, ServiceResponse};
use actix_web::error::PayloadError;
use actix_web::http::header::{CONTENT_LENGTH, TRANSFER_ENCODING};
use actix_web::middleware::Next;
use actix_web::web::Bytes;
use futures_util::Stream;

/// A body up to this size may be drained to keep the connection.
const DRAINED_AT_MOST: u64 = 64 * 1024;

/// Longer than actix takes to write an answer and linger before closing; then the body is let go.
const HELD_FOR: Duration = Duration::from_secs(5);

/// Middleware: wraps a large or chunked body so that, if the answer leaves part of it unread, it is kept alive until
/// the connection has been closed.
pub async fn hold_unread_body(
    mut req: ServiceRequest,
    next: Next<impl MessageBody>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    if !may_be_large(&req) {
        return next.call(req).await;
    }
    let shared = Shared(Rc::new(RefCell::new(Body {
        payload: req.take_payload(),
        finished: false,
    })));
    req.set_payload(Payload::Stream {
        payload: Box::pin(Shared(shared.0.clone())),
    });
    let answered = next.call(req).await;
    if !shared.0.borrow().finished {
        metrics::counter!("http_unread_bodies_held_total").increment(1);
        actix_web::rt::spawn(async move {
            tokio::time::sleep(HELD_FOR).await;
            drop(shared);
        });
    }
    answered
}

/// A chunked body, or one whose Content-Length is over [`DRAINED_AT_MOST`] (or unreadable).
fn may_be_large(req: &ServiceRequest) -> bool {
    let headers = req.headers();
    let chunked = headers
        .get(TRANSFER_ENCODING)
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"chunked"));
    let length = headers.get(CONTENT_LENGTH).map(|v| {
        v.to_str()
            .ok()
            .and_then(|v| v.trim().parse::<u64>().ok())
            .unwrap_or(u64::MAX)
    });
    chunked || length.is_some_and(|n| n > DRAINED_AT_MOST)
}

struct Body {
    payload: Payload,
    /// The body was read to its end (or broke off): nothing is left for actix to drain.
    finished: bool,
}

/// The body as the handler reads it, shared with the middleware that may hold it.
struct Shared(Rc<RefCell<Body>>);

impl Stream for Shared {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let mut body = self.0.borrow_mut();
        let polled = Pin::new(&mut body.payload).poll_next(cx);
        if matches!(polled, Poll::Ready(None | Some(Err(_)))) {
            body.finished = true;
        }
        polled
    }
}
