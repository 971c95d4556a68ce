//! The SOAP binding: a SOAP 1.2 `deliverMessage` request with the payloads as SwA
//! attachments (`multipart/related`), one POST per message.
//!
//! HTTP `Content-Type`: `multipart/related; type="application/soap+xml";
//! start="<deliverMessage@as4gate>"; start-info="application/soap+xml"; boundary=…`.
//! The root part (`Content-ID: <deliverMessage@as4gate>`, `Content-Type: application/soap+xml;
//! charset=UTF-8; action="urn:as4gate:backend:1:deliverMessage"`) is exactly:
//!
//! ```xml
//! <?xml version="1.0" encoding="UTF-8"?>
//! <env:Envelope xmlns:env="http://www.w3.org/2003/05/soap-envelope">
//!   <env:Body>
//!     <deliverMessage xmlns="urn:as4gate:backend:1">
//!       <messageId>m1@blue</messageId>
//!       <delivery subscription="archive" attempt="1" possibleDuplicate="false"/>
//!       <conversationId>c1</conversationId>
//!       <refToMessageId>…</refToMessageId>          <!-- only when present -->
//!       <timestamp>2026-11-23T00:00:00Z</timestamp>
//!       <receivedAt>2026-11-23T00:00:01Z</receivedAt>
//!       <pmodeId>blue-to-red</pmodeId>
//!       <agreement>…</agreement>                    <!-- only when present -->
//!       <mpc>…</mpc>
//!       <from><partyId>blue_gw</partyId><role>…</role></from>
//!       <to><partyId>red_gw</partyId><role>…</role></to>
//!       <service type="…">svc</service>             <!-- type only when present -->
//!       <action>act</action>
//!       <properties>
//!         <property name="originalSender" type="…">x</property>
//!       </properties>
//!       <payloads>
//!         <payload href="cid:p1@x" mimeType="application/xml" characterSet="…"
//!                  size="3" sha256="…">
//!           <property name="…">…</property>          <!-- part properties -->
//!         </payload>
//!       </payloads>
//!     </deliverMessage>
//!   </env:Body>
//! </env:Envelope>
//! ```
//!
//! (without the comments or indentation). `<delivery>` is the [`Attempt`]: the subscription,
//! the attempt number (1 for the first) and whether an earlier attempt may already have
//! reached the back-end. Each payload follows as a part with `Content-ID: <p1@x>`,
//! `Content-Type: <MimeType>` and `Content-Transfer-Encoding: binary`, in the order of
//! `<payloads>`. The request also carries the delivery headers
//! ([`super::MESSAGE_ID_HEADER`], [`super::ATTEMPT_HEADER`],
//! [`super::POSSIBLE_DUPLICATE_HEADER`]). Success is a 2xx answer whose body is a SOAP
//! envelope without a `Fault` ([`SoapRetryLogic`]); any `deliverMessageResponse` content is
//! ignored.
//!
//! `docs/backend/as4gate-backend.wsdl` and its schema `as4gate-backend.xsd` describe this
//! request for back-end developers; `tests/delivery_connectors.rs` validates what
//! [`envelope`] produces against that schema, so the two change together.

use bytes::Bytes;

use super::config::BackendConfig;
use super::multipart::{Multipart, content_id_header, open_payloads, quoted, safe_mime_type};
use super::retry::{RetryLogic, SoapRetryLogic};
use super::transport::HttpSender;
use super::{Attempt, Connector, ConnectorError, Outcome, delivery_headers};
use as4gate_ebms::xml::escape;

use crate::store::{BlobStore, InboundRecord, StoredProperty};

/// Namespace of the back-end interface.
pub const BACKEND_NS: &str = "urn:as4gate:backend:1";

/// SOAP action of `deliverMessage`.
pub const DELIVER_ACTION: &str = "urn:as4gate:backend:1:deliverMessage";

/// Content-ID of the envelope part.
pub const ROOT_CONTENT_ID: &str = "deliverMessage@as4gate";

/// The `deliverMessage` envelope for `m` delivered as `attempt` (see the module docs for
/// its shape).
pub fn envelope(m: &InboundRecord, attempt: &Attempt) -> String {
    let mut x = String::with_capacity(1024);
    x.push_str("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    x.push_str("<env:Envelope xmlns:env=\"http://www.w3.org/2003/05/soap-envelope\"><env:Body>");
    x.push_str(&format!("<deliverMessage xmlns=\"{BACKEND_NS}\">"));
    element(&mut x, "messageId", &m.message_id);
    x.push_str("<delivery");
    attribute(&mut x, "subscription", &attempt.subscription);
    attribute(&mut x, "attempt", &attempt.number.to_string());
    attribute(
        &mut x,
        "possibleDuplicate",
        if attempt.possible_duplicate {
            "true"
        } else {
            "false"
        },
    );
    x.push_str("/>");
    element(&mut x, "conversationId", &m.conversation_id);
    if let Some(r) = &m.ref_to_message_id {
        element(&mut x, "refToMessageId", r);
    }
    element(&mut x, "timestamp", &m.message_timestamp);
    element(&mut x, "receivedAt", &m.received_at);
    element(&mut x, "pmodeId", &m.pmode_id);
    if let Some(a) = &m.agreement {
        element(&mut x, "agreement", a);
    }
    element(&mut x, "mpc", &m.mpc);
    for (name, party, role) in [
        ("from", &m.from_party, &m.from_role),
        ("to", &m.to_party, &m.to_role),
    ] {
        x.push_str(&format!("<{name}>"));
        element(&mut x, "partyId", party);
        element(&mut x, "role", role);
        x.push_str(&format!("</{name}>"));
    }
    x.push_str("<service");
    if let Some(t) = &m.service_type {
        attribute(&mut x, "type", t);
    }
    x.push('>');
    x.push_str(&escape(&m.service));
    x.push_str("</service>");
    element(&mut x, "action", &m.action);
    x.push_str("<properties>");
    properties(&mut x, &m.message_properties);
    x.push_str("</properties><payloads>");
    for p in &m.payloads {
        x.push_str("<payload");
        attribute(&mut x, "href", &format!("cid:{}", p.content_id));
        if let Some(v) = &p.mime_type {
            attribute(&mut x, "mimeType", v);
        }
        if let Some(v) = &p.character_set {
            attribute(&mut x, "characterSet", v);
        }
        attribute(&mut x, "size", &p.blob.size.to_string());
        attribute(&mut x, "sha256", &p.blob.id);
        x.push('>');
        properties(&mut x, &p.properties);
        x.push_str("</payload>");
    }
    x.push_str("</payloads></deliverMessage></env:Body></env:Envelope>");
    x
}

fn properties(x: &mut String, props: &[StoredProperty]) {
    for p in props {
        x.push_str("<property");
        attribute(x, "name", &p.name);
        if let Some(t) = &p.r#type {
            attribute(x, "type", t);
        }
        x.push('>');
        x.push_str(&escape(&p.value));
        x.push_str("</property>");
    }
}

fn element(x: &mut String, name: &str, text: &str) {
    x.push_str(&format!("<{name}>{}</{name}>", escape(text)));
}

fn attribute(x: &mut String, name: &str, value: &str) {
    x.push_str(&format!(" {name}=\"{}\"", escape(value)));
}

/// Pushes messages to a SOAP back-end.
#[derive(Debug)]
pub struct SoapConnector {
    id: String,
    sender: HttpSender,
    logic: SoapRetryLogic,
}

impl SoapConnector {
    /// A connector for `config` (its binding is not checked here).
    pub fn new(config: BackendConfig) -> Result<SoapConnector, ConnectorError> {
        Ok(SoapConnector {
            sender: HttpSender::new(&config)?,
            id: config.id,
            logic: SoapRetryLogic,
        })
    }
}

impl Connector for SoapConnector {
    fn id(&self) -> &str {
        &self.id
    }

    async fn deliver(
        &self,
        message: &InboundRecord,
        blobs: &BlobStore,
        attempt: &Attempt,
    ) -> Outcome {
        let payloads = match open_payloads(message, blobs).await {
            Ok(p) => p,
            Err(e) => return self.logic.classify(Err(&e)),
        };
        let mut body = Multipart::new();
        body.bytes_part(
            &[
                format!("Content-ID: <{ROOT_CONTENT_ID}>"),
                format!(
                    "Content-Type: application/soap+xml; charset=UTF-8; action={}",
                    quoted(DELIVER_ACTION)
                ),
                "Content-Transfer-Encoding: binary".to_owned(),
            ],
            Bytes::from(envelope(message, attempt)),
        );
        for (stored, payload) in message.payloads.iter().zip(payloads) {
            body.payload_part(
                &[
                    content_id_header(&stored.content_id),
                    format!(
                        "Content-Type: {}",
                        safe_mime_type(stored.mime_type.as_deref())
                    ),
                    "Content-Transfer-Encoding: binary".to_owned(),
                ],
                payload,
            );
        }
        let content_type = format!(
            "multipart/related; type=\"application/soap+xml\"; start=\"<{ROOT_CONTENT_ID}>\"; \
             start-info=\"application/soap+xml\"; boundary=\"{}\"",
            body.boundary()
        );
        let headers = delivery_headers(&message.message_id, attempt);
        let answer = self.sender.post(content_type, headers, body).await;
        self.logic.classify(answer.as_ref())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes_markup_and_line_breaks() {
        assert_eq!(
            escape("a<b>&\"c'\r\n"),
            "a&lt;b&gt;&amp;&quot;c&apos;&#13;&#10;"
        );
    }
}
