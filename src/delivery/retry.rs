//! The one retry decision: what an exchange with a back-end means for the message.
//!
//! [`RetryLogic::classify`] turns the answer (or the failure) of one exchange into an
//! [`Outcome`]. The HTTP rules are shared by every connector ([`http_rules`]):
//!
//! | exchange                                   | outcome     |
//! |--------------------------------------------|-------------|
//! | 2xx                                        | `Delivered` |
//! | 408 Request Timeout, 429 Too Many Requests | `Retry`     |
//! | other 4xx                                  | `Permanent` |
//! | 5xx                                        | `Retry`     |
//! | 1xx / 3xx (redirects are not followed)     | `Permanent` |
//! | timeout, connection or TLS failure         | `Retry`     |
//! | payload missing or corrupt in the store    | `Permanent` |
//!
//! [`SoapRetryLogic`] adds one rule: a SOAP 1.2 or 1.1 `Fault` in the answer's `Body`
//! (2xx or 5xx) is `Retry`, and a 2xx answer counts only when its body is a SOAP envelope
//! without a fault. Success is therefore always an explicit answer, never a silence.

use std::io;
use std::time::Duration;

use as4gate_ebms::mime::{MultipartRelated, MultipartSplitter, PartHeaders, PartSink};
use as4gate_ebms::{EbmsError, Limits, ns};
use bytes::Bytes;
use uppsala::{Document, NodeId, NodeKind};

use super::Outcome;

/// Most bytes of a back-end's answer that are read; a longer answer is cut off there
/// (a delivery answer is a status, not data).
pub const MAX_ANSWER_BYTES: usize = 1024 * 1024;

/// The HTTP answer a back-end gave.
#[derive(Debug, Clone)]
pub struct Answer {
    /// HTTP status code.
    pub status: u16,
    /// The `Content-Type` header, when present and readable.
    pub content_type: Option<String>,
    /// The first [`MAX_ANSWER_BYTES`] of the body.
    pub body: Bytes,
    /// Whether the body was longer than [`MAX_ANSWER_BYTES`] and cut off.
    pub truncated: bool,
}

/// An exchange that produced no answer.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The TCP connection could not be opened (refused, unreachable, DNS).
    #[error("cannot connect to the back-end: {0}")]
    Connect(#[source] io::Error),
    /// The TLS handshake failed (certificate not trusted, protocol mismatch).
    #[error("TLS handshake with the back-end failed: {0}")]
    Tls(#[source] io::Error),
    /// The whole exchange took longer than the back-end's `timeout`.
    #[error("no complete answer within {0:?}")]
    Timeout(Duration),
    /// The HTTP exchange broke off (connection reset, malformed answer).
    #[error("HTTP exchange failed: {0}")]
    Http(#[source] hyper::Error),
    /// A payload could not be read from the store (missing or corrupt blob).
    #[error("payload {content_id} cannot be read from the store: {source}")]
    Payload {
        /// Content-ID of the payload.
        content_id: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// A payload could not be read from the store, but may be readable later (I/O error).
    #[error("payload {content_id} could not be read this time: {source}")]
    PayloadIo {
        /// Content-ID of the payload.
        content_id: String,
        /// What went wrong.
        #[source]
        source: io::Error,
    },
    /// The request could not be built (a configuration problem).
    #[error("request cannot be built: {0}")]
    Request(String),
}

/// Decides what one exchange with a back-end means for the message.
pub trait RetryLogic: Send + Sync {
    /// The outcome of an exchange that was answered (`Ok`) or failed (`Err`).
    fn classify(&self, exchange: Result<&Answer, &ExchangeError>) -> Outcome;
}

/// The HTTP rules every connector shares (see the module table).
pub fn http_rules(exchange: Result<&Answer, &ExchangeError>) -> Outcome {
    match exchange {
        Ok(answer) => match answer.status {
            200..=299 => Outcome::Delivered,
            408 | 429 => Outcome::retry(format!("back-end answered HTTP {}", answer.status)),
            400..=499 => Outcome::permanent(format!(
                "back-end refused the message: HTTP {}",
                answer.status
            )),
            500..=599 => Outcome::retry(format!("back-end failed: HTTP {}", answer.status)),
            300..=399 => Outcome::permanent(format!(
                "back-end answered a redirect (HTTP {}); redirects are not followed, fix the url",
                answer.status
            )),
            other => Outcome::retry(format!("back-end answered unexpected HTTP {other}")),
        },
        Err(e @ ExchangeError::Payload { .. }) | Err(e @ ExchangeError::Request(_)) => {
            Outcome::permanent(e.to_string())
        }
        Err(e) => Outcome::retry(e.to_string()),
    }
}

/// Retry logic of the REST connector: exactly the HTTP rules.
#[derive(Debug, Clone, Copy, Default)]
pub struct RestRetryLogic;

impl RetryLogic for RestRetryLogic {
    fn classify(&self, exchange: Result<&Answer, &ExchangeError>) -> Outcome {
        http_rules(exchange)
    }
}

/// Retry logic of the SOAP connector: the HTTP rules, and a SOAP `Fault` is a retry.
#[derive(Debug, Clone, Copy, Default)]
pub struct SoapRetryLogic;

impl RetryLogic for SoapRetryLogic {
    fn classify(&self, exchange: Result<&Answer, &ExchangeError>) -> Outcome {
        let outcome = http_rules(exchange);
        let Ok(answer) = exchange else {
            return outcome;
        };
        if !(200..=299).contains(&answer.status) && !(500..=599).contains(&answer.status) {
            return outcome;
        }
        match soap_verdict(answer) {
            SoapVerdict::Fault(text) => Outcome::retry(format!(
                "back-end answered a SOAP Fault (HTTP {}): {text}",
                answer.status
            )),
            SoapVerdict::Unreadable(why) if outcome == Outcome::Delivered => {
                Outcome::retry(format!(
                    "back-end answered HTTP {} without a SOAP envelope: {why}",
                    answer.status
                ))
            }
            _ => outcome,
        }
    }
}

/// What the body of a SOAP answer says.
#[derive(Debug, PartialEq, Eq)]
enum SoapVerdict {
    /// A SOAP envelope without a fault.
    Envelope,
    /// A SOAP 1.2 or 1.1 fault, with its reason text.
    Fault(String),
    /// Not a readable SOAP envelope.
    Unreadable(String),
}

fn soap_verdict(answer: &Answer) -> SoapVerdict {
    if answer.truncated {
        return SoapVerdict::Unreadable(format!("answer longer than {MAX_ANSWER_BYTES} bytes"));
    }
    let is_multipart = answer.content_type.as_deref().is_some_and(|ct| {
        ct.trim_start()
            .to_ascii_lowercase()
            .starts_with("multipart/")
    });
    let xml = if is_multipart {
        match root_part(
            answer.content_type.as_deref().unwrap_or_default(),
            &answer.body,
        ) {
            Ok(root) => root,
            Err(e) => return SoapVerdict::Unreadable(e.to_string()),
        }
    } else {
        answer.body.to_vec()
    };
    envelope_verdict(&xml)
}

fn envelope_verdict(xml: &[u8]) -> SoapVerdict {
    let text = match as4gate_ebms::xml::envelope_text(xml) {
        Ok(t) => t,
        Err(e) => return SoapVerdict::Unreadable(e.to_string()),
    };
    let limits = Limits::default();
    let doc = match as4gate_ebms::xml::parse(text, &limits) {
        Ok(d) => d,
        Err(e) => return SoapVerdict::Unreadable(e.to_string()),
    };
    let Some(root) = doc.document_element() else {
        return SoapVerdict::Unreadable("no root element".to_owned());
    };
    let soap_ns = [ns::SOAP12_ENV, ns::SOAP11_ENV]
        .into_iter()
        .find(|n| has_name(&doc, root, n, "Envelope"));
    let Some(soap_ns) = soap_ns else {
        return SoapVerdict::Unreadable("the root element is not a SOAP Envelope".to_owned());
    };
    let Some(body) = children(&doc, root).find(|c| has_name(&doc, *c, soap_ns, "Body")) else {
        return SoapVerdict::Unreadable("the SOAP Envelope has no Body".to_owned());
    };
    match children(&doc, body).find(|c| has_name(&doc, *c, soap_ns, "Fault")) {
        Some(fault) => {
            let mut reason = String::new();
            collect_text(&doc, fault, &mut reason);
            let reason = reason.split_whitespace().collect::<Vec<_>>().join(" ");
            SoapVerdict::Fault(reason.chars().take(500).collect())
        }
        None => SoapVerdict::Envelope,
    }
}

fn has_name(doc: &Document<'_>, id: NodeId, namespace: &str, local: &str) -> bool {
    doc.element(id)
        .is_some_and(|e| e.name.matches(Some(namespace), local))
}

fn children<'d>(doc: &'d Document<'_>, id: NodeId) -> impl Iterator<Item = NodeId> + 'd {
    doc.children_iter(id)
        .filter(|c| matches!(doc.node_kind(*c), Some(NodeKind::Element(_))))
}

fn collect_text(doc: &Document<'_>, id: NodeId, out: &mut String) {
    for child in doc.children_iter(id) {
        match doc.node_kind(child) {
            Some(NodeKind::Text(t) | NodeKind::CData(t)) => {
                out.push_str(t);
                out.push(' ');
            }
            Some(NodeKind::Element(_)) => collect_text(doc, child, out),
            _ => {}
        }
    }
}

/// The root part (the `start` part, or the first) of a multipart answer.
fn root_part(content_type: &str, body: &[u8]) -> Result<Vec<u8>, EbmsError> {
    let related = MultipartRelated::parse(content_type)?;
    let mut splitter = MultipartSplitter::new(&related.boundary, &Limits::default())?;
    let mut sink = RootSink {
        start: related.start,
        current_is_root: false,
        root: None,
        seen_parts: 0,
    };
    splitter.push(body, &mut sink)?;
    splitter.finish(&mut sink)?;
    sink.root
        .ok_or_else(|| EbmsError::invalid_header("multipart answer without a root part"))
}

/// Keeps the bytes of the root part of a multipart answer.
struct RootSink {
    start: Option<String>,
    current_is_root: bool,
    root: Option<Vec<u8>>,
    seen_parts: usize,
}

impl PartSink for RootSink {
    fn part_start(&mut self, headers: PartHeaders) -> Result<(), EbmsError> {
        self.current_is_root = match (&self.start, &headers.content_id) {
            (Some(start), Some(id)) => {
                start.trim_matches(['<', '>']) == id.trim_matches(['<', '>'])
            }
            (Some(_), None) => false,
            (None, _) => self.seen_parts == 0,
        };
        self.seen_parts += 1;
        if self.current_is_root {
            self.root = Some(Vec::new());
        }
        Ok(())
    }

    fn part_data(&mut self, data: &[u8]) -> Result<(), EbmsError> {
        if self.current_is_root
            && let Some(root) = &mut self.root
        {
            root.extend_from_slice(data);
        }
        Ok(())
    }

    fn part_end(&mut self) -> Result<(), EbmsError> {
        self.current_is_root = false;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn answer(status: u16, content_type: &str, body: &str) -> Answer {
        Answer {
            status,
            content_type: Some(content_type.to_owned()),
            body: Bytes::from(body.to_owned()),
            truncated: false,
        }
    }

    const SOAP12_OK: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><deliverMessageResponse xmlns="urn:as4gate:backend:1"/></env:Body></env:Envelope>"#;
    const SOAP12_FAULT: &str = r#"<env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope"><env:Body><env:Fault><env:Code><env:Value>env:Receiver</env:Value></env:Code><env:Reason><env:Text xml:lang="en">database down</env:Text></env:Reason></env:Fault></env:Body></env:Envelope>"#;
    const SOAP11_FAULT: &str = r#"<s:Envelope xmlns:s="http://schemas.xmlsoap.org/soap/envelope/"><s:Body><s:Fault><faultcode>s:Server</faultcode><faultstring>busy</faultstring></s:Fault></s:Body></s:Envelope>"#;

    #[test]
    fn http_status_rules() {
        let cases = [
            (200, Outcome::Delivered),
            (204, Outcome::Delivered),
            (
                400,
                Outcome::permanent("back-end refused the message: HTTP 400"),
            ),
            (
                404,
                Outcome::permanent("back-end refused the message: HTTP 404"),
            ),
            (408, Outcome::retry("back-end answered HTTP 408")),
            (429, Outcome::retry("back-end answered HTTP 429")),
            (500, Outcome::retry("back-end failed: HTTP 500")),
            (503, Outcome::retry("back-end failed: HTTP 503")),
        ];
        for (status, expected) in cases {
            let a = answer(status, "text/plain", "");
            assert_eq!(RestRetryLogic.classify(Ok(&a)), expected, "HTTP {status}");
        }
        let redirect = answer(302, "text/plain", "");
        assert!(matches!(
            RestRetryLogic.classify(Ok(&redirect)),
            Outcome::Permanent { .. }
        ));
    }

    #[test]
    fn failures_retry_except_store_problems() {
        let timeout = ExchangeError::Timeout(Duration::from_secs(1));
        assert!(matches!(
            RestRetryLogic.classify(Err(&timeout)),
            Outcome::Retry { .. }
        ));
        let refused = ExchangeError::Connect(io::ErrorKind::ConnectionRefused.into());
        assert!(matches!(
            SoapRetryLogic.classify(Err(&refused)),
            Outcome::Retry { .. }
        ));
        let missing = ExchangeError::Payload {
            content_id: "p1".into(),
            source: io::ErrorKind::NotFound.into(),
        };
        assert!(matches!(
            SoapRetryLogic.classify(Err(&missing)),
            Outcome::Permanent { .. }
        ));
    }

    #[test]
    fn soap_faults_are_retried_and_success_needs_an_envelope() {
        let ok = answer(200, "application/soap+xml", SOAP12_OK);
        assert_eq!(SoapRetryLogic.classify(Ok(&ok)), Outcome::Delivered);
        let fault = answer(200, "application/soap+xml", SOAP12_FAULT);
        match SoapRetryLogic.classify(Ok(&fault)) {
            Outcome::Retry { reason } => assert!(reason.contains("database down"), "{reason}"),
            other => panic!("expected retry, got {other:?}"),
        }
        let fault11 = answer(500, "text/xml", SOAP11_FAULT);
        match SoapRetryLogic.classify(Ok(&fault11)) {
            Outcome::Retry { reason } => assert!(reason.contains("SOAP Fault"), "{reason}"),
            other => panic!("expected retry, got {other:?}"),
        }
        let empty = answer(200, "text/plain", "");
        assert!(matches!(
            SoapRetryLogic.classify(Ok(&empty)),
            Outcome::Retry { .. }
        ));
        // The REST connector does not look at bodies.
        assert_eq!(RestRetryLogic.classify(Ok(&fault)), Outcome::Delivered);
        // A 4xx stays permanent even with a fault body.
        let client_fault = answer(400, "application/soap+xml", SOAP12_FAULT);
        assert!(matches!(
            SoapRetryLogic.classify(Ok(&client_fault)),
            Outcome::Permanent { .. }
        ));
    }

    #[test]
    fn fault_inside_multipart_answer_is_found() {
        let body = format!(
            "--b1\r\nContent-Type: application/soap+xml\r\nContent-ID: <root>\r\n\r\n{SOAP12_FAULT}\r\n--b1--\r\n"
        );
        let a = answer(
            200,
            "multipart/related; boundary=b1; type=\"application/soap+xml\"; start=\"<root>\"",
            &body,
        );
        assert!(matches!(
            SoapRetryLogic.classify(Ok(&a)),
            Outcome::Retry { .. }
        ));
    }
}
