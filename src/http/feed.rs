//! `GET /feed`: the change feed as NDJSON (docs/FEED.md). Rules and lines are `crate::feed`;
//! this adapter authenticates, reads the parameters and streams pages from the store.
use super::statements::reading_department;
use super::{authenticate, AppState, Params};
use crate::auth::Need;
use crate::departments::Department;
use crate::error::{XapiError, XapiResult};
use crate::feed::{self, CursorError};
use crate::store::DynStore;
use actix_web::{web, HttpRequest, HttpResponse};
use std::time::{Duration, Instant};

/// Leaves read from the store per page: large enough to stream fast, small enough to keep
/// memory bounded whatever the size of the store.
const PAGE: usize = 2_000;
/// How often a long-poll looks at the store when no local append woke it.
const POLL: Duration = Duration::from_millis(250);

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/feed", web::get().to(get));
}

fn bad(message: String, at: &str) -> XapiError {
    XapiError::bad_request(message).at(at.to_owned())
}

async fn get(req: HttpRequest, state: web::Data<AppState>) -> XapiResult<HttpResponse> {
    let cred = authenticate(&req, &state).await?;
    cred.require(Need::StatementsRead)?;
    if cred.reads_only_mine() {
        return Err(XapiError::forbidden(
            "the feed carries every statement of the subtree: it needs statements/read or all/read, not statements/read/mine",
        ));
    }
    let reader = reading_department(&req, &cred)?;
    // A reader counts from here, long poll included.
    let connected = state.metrics.feed_reader();
    let params = Params::parse(&req)?;
    params.only(&["cursor", "limit", "wait"], "docs/FEED.md (parameters)")?;
    let limit = match params.get("limit") {
        None => feed::DEFAULT_LIMIT,
        Some(v) => v
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=feed::MAX_LIMIT).contains(n))
            .ok_or_else(|| {
                bad(
                    format!("`limit` must be an integer from 1 to {}", feed::MAX_LIMIT),
                    "limit",
                )
            })?,
    };
    let wait = match params.get("wait") {
        None => 0,
        Some(v) => v
            .parse::<u64>()
            .ok()
            .filter(|n| *n <= feed::MAX_WAIT_SECONDS)
            .ok_or_else(|| {
                bad(
                    format!(
                        "`wait` must be a whole number of seconds from 0 to {}",
                        feed::MAX_WAIT_SECONDS
                    ),
                    "wait",
                )
            })?,
    };
    let mut size = state.store.log_state().await?.size;
    let mut from = match params.get("cursor") {
        None => 0,
        Some(c) => feed::position(c, &reader, size).map_err(|e| {
            let e = match e {
                CursorError::Foreign => bad(
                    format!(
                        "{e}: a cursor continues only the feed of the department it was given to"
                    ),
                    "cursor",
                ),
                _ => bad(e.to_string(), "cursor"),
            };
            e.req("docs/FEED.md (cursors)")
        })?,
    };
    // Long poll: until the subtree has an event or the wait is over.
    let mut first = state
        .store
        .feed(&reader, from, size, limit.min(PAGE))
        .await?;
    if wait > 0 {
        let deadline = Instant::now() + Duration::from_secs(wait);
        while first.items.is_empty() {
            from = first.next;
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                break;
            }
            state.audit.growth(left.min(POLL)).await;
            size = state.store.log_state().await?.size;
            first = state
                .store
                .feed(&reader, from, size, limit.min(PAGE))
                .await?;
        }
    }
    let stream = Stream {
        _reader: connected,
        store: state.store.clone(),
        reader,
        size,
        left: limit,
        page: Some(first),
        next: from,
        done: false,
    };
    Ok(HttpResponse::Ok()
        .content_type("application/x-ndjson")
        .insert_header(("Cache-Control", "no-store"))
        .streaming(futures_util::stream::unfold(stream, Stream::step)))
}

/// The pages of one response, read one at a time as the client takes them.
struct Stream {
    /// Counts this response in `lrs_feed_readers` until it is sent or dropped.
    _reader: crate::metrics::FeedReaderGuard,
    store: DynStore,
    reader: Department,
    size: u64,
    left: usize,
    /// A page read but not yet sent.
    page: Option<crate::store::FeedPage>,
    /// Where the next page starts.
    next: u64,
    done: bool,
}

impl Stream {
    async fn step(mut self) -> Option<(Result<bytes::Bytes, actix_web::Error>, Stream)> {
        if self.done {
            return None;
        }
        let page = match self.page.take() {
            Some(p) => p,
            None if self.left > 0 && self.next < self.size => {
                match self
                    .store
                    .feed(&self.reader, self.next, self.size, self.left.min(PAGE))
                    .await
                {
                    Ok(p) => p,
                    Err(e) => {
                        // The status is sent: end the body early; the client sees no
                        // end line and resumes from its last event.
                        tracing::warn!("feed read failed mid-stream: {e}");
                        self.done = true;
                        return Some((
                            Err(actix_web::error::ErrorServiceUnavailable(
                                "store unavailable",
                            )),
                            self,
                        ));
                    }
                }
            }
            None => {
                self.done = true;
                let mut out = Vec::with_capacity(96);
                feed::end_line(self.next, &self.reader, self.size, &mut out);
                return Some((Ok(out.into()), self));
            }
        };
        let mut out = Vec::with_capacity(page.items.len() * 1_400 + 96);
        let mut taken = 0;
        for item in &page.items {
            if taken == self.left {
                break;
            }
            feed::line(item, &self.reader, &mut out);
            self.next = item.leaf + 1;
            taken += 1;
        }
        self.left -= taken;
        if taken == page.items.len() {
            self.next = self.next.max(page.next);
        }
        Some((Ok(out.into()), self))
    }
}
