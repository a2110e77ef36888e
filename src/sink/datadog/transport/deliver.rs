//! Datadog's rules for one payload: the attempts and their verdicts ([`super::super::retry`]),
//! 413 splits, items that aged out of the intake's window, the circuit breaker, and what is
//! logged about refusals.

use std::time::{Duration, Instant, SystemTime};

use super::super::losses::DropCause;
use super::super::payload::{Kind, Payload};
use super::super::retry::{self, Verdict};
use super::{Transport, BACKOFF, MAX_RETRY_AFTER};
use crate::sink::http::{parse_retry_after, HttpRequest};

/// What became of one payload.
enum Outcome {
    /// Delivered or given up (and counted).
    Done,
    /// Split after a 413: send both halves.
    Split(Payload, Payload),
    /// Not now: keep it for a later retry.
    Park(Payload),
}

impl Transport {
    /// Sends a payload (and its halves after a 413); returns what must wait for a retry.
    pub(super) fn deliver(&mut self, payload: Payload) -> Vec<Payload> {
        let mut work = vec![payload];
        let mut parked = Vec::new();
        while let Some(payload) = work.pop() {
            if !parked.is_empty() {
                parked.push(payload);
                continue;
            }
            match self.attempt(payload) {
                Outcome::Done => {}
                Outcome::Split(first, second) => {
                    work.push(second);
                    work.push(first);
                }
                Outcome::Park(payload) => {
                    self.parked = true;
                    parked.push(payload);
                }
            }
        }
        parked
    }

    /// Sends one payload, retrying what may be retried now.
    fn attempt(&mut self, mut payload: Payload) -> Outcome {
        let mut attempt = 0u32;
        loop {
            let window = payload.kind.window(SystemTime::now());
            payload = match payload.retain(&window, &self.losses) {
                Some(payload) => payload,
                None => return Outcome::Done,
            };
            if self.paused(Instant::now()) {
                return Outcome::Park(payload);
            }
            let Some(timeout) = self.clock.request_timeout() else {
                return Outcome::Park(payload);
            };
            match self.post(&payload, timeout) {
                Verdict::Delivered => {
                    self.breaker.success();
                    self.reported.clear();
                    return Outcome::Done;
                }
                Verdict::Split => {
                    return match payload.split() {
                        Ok((first, second)) => Outcome::Split(first, second),
                        Err(single) => {
                            self.log(format_args!(
                                "a single {} is too large (413), dropped",
                                single.kind.name()
                            ));
                            single.lose(DropCause::TooLarge, &self.losses);
                            Outcome::Done
                        }
                    };
                }
                Verdict::Unauthorized => {
                    payload.lose(DropCause::Unauthorized, &self.losses);
                    if let Some(pause) = self.breaker.refused(Instant::now()) {
                        self.log(format_args!(
                            "the API key was refused repeatedly: sending paused for {}s",
                            pause.as_secs()
                        ));
                    }
                    return Outcome::Done;
                }
                Verdict::Drop(loss) => {
                    payload.lose(loss, &self.losses);
                    return Outcome::Done;
                }
                Verdict::Retry { after } => {
                    attempt += 1;
                    if attempt > self.options.max_retries {
                        return Outcome::Park(payload);
                    }
                    let wait = after.unwrap_or_else(|| BACKOFF.wait(attempt, self.jitter.next()));
                    if wait > BACKOFF.max {
                        self.log(format_args!(
                            "asked to retry after {}s: sending paused",
                            wait.as_secs()
                        ));
                        self.paused_until = Some(Instant::now() + wait);
                        return Outcome::Park(payload);
                    }
                    if !self.clock.sleep(wait) {
                        return Outcome::Park(payload);
                    }
                }
            }
        }
    }

    fn url(&self, kind: Kind) -> String {
        format!("{}{}", self.options.base_url, kind.path())
    }

    /// One request, and its verdict.
    fn post(&mut self, payload: &Payload, timeout: Duration) -> Verdict {
        let mut headers = vec![
            ("DD-API-KEY", self.options.api_key.expose()),
            ("Content-Type", "application/json"),
        ];
        if let Some(encoding) = payload.compression.header() {
            headers.push(("Content-Encoding", encoding));
        }
        let url = self.url(payload.kind);
        let request = HttpRequest {
            method: "POST",
            url: &url,
            headers: &headers,
            body: payload.body.as_slice(),
            timeout,
        };
        match self.http.send(request) {
            Ok(answer) => {
                let retry_after = answer
                    .header("retry-after")
                    .and_then(|value| parse_retry_after(value, SystemTime::now()))
                    .map(|wait| wait.min(MAX_RETRY_AFTER));
                let verdict = retry::classify_status(answer.status, retry_after);
                self.report(payload, answer.status, verdict, &answer.body);
                verdict
            }
            Err(error) => {
                let verdict = retry::classify_error(error.kind(), payload.kind.idempotent());
                if self.first_report(0) {
                    self.log(format_args!("sending {} failed: {error}", payload.kind.name()));
                }
                verdict
            }
        }
    }

    /// Whether `status` was not reported since the last accepted request (and marks it).
    fn first_report(&mut self, status: u16) -> bool {
        if self.reported.contains(&status) {
            return false;
        }
        self.reported.push(status);
        true
    }

    /// Logs a refused payload (once per status until a request is accepted) and a partly
    /// refused one (2xx with errors).
    fn report(&mut self, payload: &Payload, status: u16, verdict: Verdict, answer: &[u8]) {
        if !self.debug() {
            return;
        }
        let answer = String::from_utf8_lossy(answer.get(..512).unwrap_or(answer))
            .replace(self.options.api_key.expose(), "<redacted>");
        match verdict {
            Verdict::Delivered => {
                // `{"errors": []}` when all is well.
                let errors = serde_json::from_str::<serde_json::Value>(&answer)
                    .ok()
                    .and_then(|v| v.get("errors").and_then(|e| e.as_array()).map(Vec::len));
                if errors.is_some_and(|n| n > 0) {
                    self.log(format_args!(
                        "{} accepted with errors ({status}): {answer}",
                        payload.kind.name()
                    ));
                }
            }
            _ if !self.first_report(status) => {}
            Verdict::Split => {
                self.log(format_args!("{} too large (413), splitting", payload.kind.name()));
            }
            Verdict::Unauthorized => self.log(format_args!(
                "the API key was refused ({status}), {} dropped: {answer}",
                payload.kind.name()
            )),
            Verdict::Drop(_) => self
                .log(format_args!("{} refused ({status}), dropped: {answer}", payload.kind.name())),
            Verdict::Retry { .. } => self.log(format_args!(
                "{} not accepted ({status}), will retry: {answer}",
                payload.kind.name()
            )),
        }
    }
}
