//! Parsing `eb:Messaging` into the model, with the ebMS3 / AS4 / eDelivery checks.
//!
//! Structure follows the ebMS3 header schema: children must appear in schema
//! order, unknown `eb:` elements are refused, foreign-namespace extension
//! elements are ignored where the schema has `xs:any ##other`. Error codes:
//!
//! | violation | code |
//! |---|---|
//! | missing/misplaced/unknown element, empty mandatory value, bad MessageId or Timestamp syntax, count over a [`Limits`] bound | EBMS:0009 InvalidHeader |
//!
//! MessageId syntax: ebMS3 core §5.2.2.1 asks for an RFC 2822 msg-id, but real
//! senders (phase4, AS4.NET) emit bare UUIDs or `1`; refusing them would break
//! interoperability, so inbound ids are only required to be printable ASCII
//! without `<`/`>` and at most [`Limits::max_message_id_len`] long. Our own ids
//! are checked with the strict [`super::is_valid_message_id`] when building.
//! | more than one `eb:UserMessage` (AS4 does not bundle user messages; ebMS3 core allows one in core features) | EBMS:0003 ValueInconsistent |
//! | untyped PartyId / Service that is not a URI (ebMS3 core §5.2.2.4, §5.2.2.8) | EBMS:0003 |
//! | two PartInfo with the same href | EBMS:0003 |
//! | PartInfo without href (body payload) or with a non-`cid:` href: AS4 carries payloads as MIME parts only | EBMS:0011 ExternalPayloadError |
//! | `CompressionType` other than `application/gzip` (AS4 §3.1 defines only gzip; we cannot decompress it) | EBMS:0303 DecompressionFailure |
//! | compressed part without `MimeType` (eDelivery AS4 1.15 §3.2.4, TA CP_TA26; same code as phase4) | EBMS:0003 |
//! | malformed `ebbp:NonRepudiationInformation` in a receipt | EBMS:0302 InvalidReceipt |
//!
//! Errors raised after the user message's `eb:MessageId` has been read carry it
//! as `ref_to_message_id`.

use uppsala::{Document, NodeId};

use super::lexical::{is_acceptable_message_id, is_xs_date_time, looks_like_uri};
use super::{
    AgreementRef, CollaborationInfo, ErrorReport, MessageInfo, Messaging, NrReference, PartInfo,
    Party, PartyId, PartyInfo, Property, PullRequest, Receipt, Service, Signal, SignalMessage,
    TransformSpec, UserMessage,
};
use crate::dom::{attribute, display_name, element_children, is_element, simple_text};
use crate::error::{EbmsError, ErrorCode};
use crate::limits::Limits;
use crate::ns;

impl Messaging {
    /// Parses the `eb:Messaging` element `messaging` (from
    /// [`crate::envelope::EnvelopeNodes::locate`]) with the default [`Limits`].
    pub fn parse(doc: &Document<'_>, messaging: NodeId) -> Result<Messaging, EbmsError> {
        Messaging::parse_with_limits(doc, messaging, &Limits::default())
    }

    /// Parses the `eb:Messaging` element `messaging` with explicit limits.
    pub fn parse_with_limits(
        doc: &Document<'_>,
        messaging: NodeId,
        limits: &Limits,
    ) -> Result<Messaging, EbmsError> {
        if !is_element(doc, messaging, ns::EBMS, "Messaging") {
            return Err(EbmsError::invalid_header(format!(
                "expected eb:Messaging, found {}",
                display_name(doc, messaging)
            )));
        }
        let p = Parser { doc, limits };
        let children = element_children(doc, messaging)?;
        let user_count = children
            .iter()
            .filter(|&&c| is_element(doc, c, ns::EBMS, "UserMessage"))
            .count();
        if user_count > 1 {
            return Err(EbmsError::new(
                ErrorCode::ValueInconsistent,
                format!(
                    "{user_count} eb:UserMessage in eb:Messaging; AS4 does not support bundling user messages"
                ),
            ));
        }
        let mut out = Messaging::default();
        let mut units = 0usize;
        for child in children {
            if is_element(doc, child, ns::EBMS, "UserMessage") {
                out.user_messages.push(p.user_message(child)?);
            } else if is_element(doc, child, ns::EBMS, "SignalMessage") {
                out.signals.push(p.signal_message(child)?);
            } else if p.is_foreign(child) {
                continue;
            } else {
                return Err(unexpected(doc, child, messaging));
            }
            units += 1;
            if units > limits.max_signal_items {
                return Err(EbmsError::invalid_header(format!(
                    "more than {} message units in eb:Messaging",
                    limits.max_signal_items
                )));
            }
        }
        if units == 0 {
            return Err(EbmsError::invalid_header(
                "eb:Messaging contains neither eb:UserMessage nor eb:SignalMessage",
            ));
        }
        Ok(out)
    }
}

fn unexpected(doc: &Document<'_>, child: NodeId, parent: NodeId) -> EbmsError {
    EbmsError::invalid_header(format!(
        "unexpected element {} in {}",
        display_name(doc, child),
        display_name(doc, parent)
    ))
}

/// Walks the element children of one parent in schema order.
struct Children<'p, 'a> {
    doc: &'p Document<'a>,
    parent: NodeId,
    items: Vec<NodeId>,
    pos: usize,
}

impl<'p, 'a> Children<'p, 'a> {
    fn new(doc: &'p Document<'a>, parent: NodeId) -> Result<Self, EbmsError> {
        Ok(Children {
            doc,
            parent,
            items: element_children(doc, parent)?,
            pos: 0,
        })
    }

    fn optional(&mut self, local: &str) -> Option<NodeId> {
        let next = *self.items.get(self.pos)?;
        if is_element(self.doc, next, ns::EBMS, local) {
            self.pos += 1;
            Some(next)
        } else {
            None
        }
    }

    fn required(&mut self, local: &str) -> Result<NodeId, EbmsError> {
        self.optional(local).ok_or_else(|| {
            EbmsError::invalid_header(format!(
                "missing eb:{local} in {}",
                display_name(self.doc, self.parent)
            ))
        })
    }

    fn one_or_more(&mut self, local: &str, max: usize) -> Result<Vec<NodeId>, EbmsError> {
        let mut out = vec![self.required(local)?];
        while let Some(next) = self.optional(local) {
            out.push(next);
            if out.len() > max {
                return Err(EbmsError::invalid_header(format!(
                    "more than {max} eb:{local} in {}",
                    display_name(self.doc, self.parent)
                )));
            }
        }
        Ok(out)
    }

    /// Fails on any element left over.
    fn finish(self) -> Result<(), EbmsError> {
        match self.items.get(self.pos) {
            Some(&extra) => Err(unexpected(self.doc, extra, self.parent)),
            None => Ok(()),
        }
    }

    /// Like [`Children::finish`] but tolerates trailing foreign-namespace
    /// elements (schema `xs:any namespace="##other"`).
    fn finish_allowing_foreign(self) -> Result<(), EbmsError> {
        for &extra in &self.items[self.pos..] {
            let foreign = self.doc.element(extra).is_some_and(|e| {
                e.name
                    .namespace_uri
                    .as_deref()
                    .is_some_and(|n| n != ns::EBMS)
            });
            if !foreign {
                return Err(unexpected(self.doc, extra, self.parent));
            }
        }
        Ok(())
    }
}

struct Parser<'p, 'a> {
    doc: &'p Document<'a>,
    limits: &'p Limits,
}

impl<'p, 'a> Parser<'p, 'a> {
    fn children(&self, parent: NodeId) -> Result<Children<'p, 'a>, EbmsError> {
        Children::new(self.doc, parent)
    }

    fn is_foreign(&self, id: NodeId) -> bool {
        self.doc.element(id).is_some_and(|e| {
            e.name
                .namespace_uri
                .as_deref()
                .is_some_and(|n| n != ns::EBMS)
        })
    }

    /// Trimmed, non-empty text of a simple element.
    fn token(&self, id: NodeId) -> Result<String, EbmsError> {
        let text = simple_text(self.doc, id)?;
        let trimmed = text.trim();
        if trimmed.is_empty() {
            return Err(EbmsError::invalid_header(format!(
                "{} must not be empty",
                display_name(self.doc, id)
            )));
        }
        Ok(trimmed.to_owned())
    }

    /// Optional unqualified attribute; present-but-empty is refused.
    fn attr(&self, id: NodeId, local: &str) -> Result<Option<String>, EbmsError> {
        match attribute(self.doc, id, local) {
            None => Ok(None),
            Some(v) if v.trim().is_empty() => Err(EbmsError::invalid_header(format!(
                "attribute {local} of {} must not be empty",
                display_name(self.doc, id)
            ))),
            Some(v) => Ok(Some(v.trim().to_owned())),
        }
    }

    /// Optional attribute where present-but-empty means absent (received
    /// error signals: some implementations write `refToMessageInError=""`).
    fn lenient_attr(&self, id: NodeId, local: &str) -> Option<String> {
        attribute(self.doc, id, local)
            .map(str::trim)
            .filter(|v| !v.is_empty())
            .map(str::to_owned)
    }

    fn required_attr(&self, id: NodeId, local: &str) -> Result<String, EbmsError> {
        self.attr(id, local)?.ok_or_else(|| {
            EbmsError::invalid_header(format!(
                "missing attribute {local} on {}",
                display_name(self.doc, id)
            ))
        })
    }

    fn message_info(&self, id: NodeId) -> Result<MessageInfo, EbmsError> {
        let mut c = self.children(id)?;
        let timestamp = self.token(c.required("Timestamp")?)?;
        let message_id = self.token(c.required("MessageId")?)?;
        let ref_to = c
            .optional("RefToMessageId")
            .map(|n| self.token(n))
            .transpose()?;
        c.finish()?;
        if !is_acceptable_message_id(&message_id, self.limits.max_message_id_len) {
            return Err(EbmsError::invalid_header(format!(
                "eb:MessageId {message_id:?} is not a message id (printable ASCII without angle brackets, at most {} characters)",
                self.limits.max_message_id_len
            )));
        }
        let with_id = |e: EbmsError| e.with_ref_to_message_id(message_id.clone());
        if !is_xs_date_time(&timestamp) {
            return Err(with_id(EbmsError::invalid_header(format!(
                "eb:Timestamp {timestamp:?} is not an xs:dateTime"
            ))));
        }
        if let Some(r) = &ref_to
            && !is_acceptable_message_id(r, self.limits.max_message_id_len)
        {
            return Err(with_id(EbmsError::invalid_header(format!(
                "eb:RefToMessageId {r:?} is not a message id"
            ))));
        }
        Ok(MessageInfo {
            timestamp,
            message_id,
            ref_to_message_id: ref_to,
        })
    }

    fn user_message(&self, id: NodeId) -> Result<UserMessage, EbmsError> {
        let mpc = self.attr(id, "mpc")?;
        let mut c = self.children(id)?;
        let message_info = self.message_info(c.required("MessageInfo")?)?;
        let message_id = message_info.message_id.clone();
        self.user_message_rest(c, mpc, message_info)
            .map_err(|e| e.with_ref_to_message_id(message_id))
    }

    fn user_message_rest(
        &self,
        mut c: Children<'p, 'a>,
        mpc: Option<String>,
        message_info: MessageInfo,
    ) -> Result<UserMessage, EbmsError> {
        let party_info = self.party_info(c.required("PartyInfo")?)?;
        let collaboration_info = self.collaboration_info(c.required("CollaborationInfo")?)?;
        let message_properties = match c.optional("MessageProperties") {
            Some(n) => self.properties(n)?,
            None => Vec::new(),
        };
        let payload_info = match c.optional("PayloadInfo") {
            Some(n) => self.payload_info(n)?,
            None => Vec::new(),
        };
        c.finish()?;
        Ok(UserMessage {
            mpc,
            message_info,
            party_info,
            collaboration_info,
            message_properties,
            payload_info,
        })
    }

    fn party_info(&self, id: NodeId) -> Result<PartyInfo, EbmsError> {
        let mut c = self.children(id)?;
        let from = self.party(c.required("From")?)?;
        let to = self.party(c.required("To")?)?;
        c.finish()?;
        Ok(PartyInfo { from, to })
    }

    fn party(&self, id: NodeId) -> Result<Party, EbmsError> {
        let mut c = self.children(id)?;
        let mut party_ids = Vec::new();
        for n in c.one_or_more("PartyId", self.limits.max_properties)? {
            let value = self.token(n)?;
            let r#type = self.attr(n, "type")?;
            if r#type.is_none() && !looks_like_uri(&value) {
                return Err(EbmsError::new(
                    ErrorCode::ValueInconsistent,
                    format!("eb:PartyId {value:?} has no type attribute and is not a URI"),
                ));
            }
            party_ids.push(PartyId { value, r#type });
        }
        let role = self.token(c.required("Role")?)?;
        c.finish()?;
        Ok(Party { party_ids, role })
    }

    fn collaboration_info(&self, id: NodeId) -> Result<CollaborationInfo, EbmsError> {
        let mut c = self.children(id)?;
        let agreement_ref = c
            .optional("AgreementRef")
            .map(|n| {
                Ok::<_, EbmsError>(AgreementRef {
                    value: self.token(n)?,
                    r#type: self.attr(n, "type")?,
                    pmode: self.attr(n, "pmode")?,
                })
            })
            .transpose()?;
        let service_node = c.required("Service")?;
        let service = Service {
            value: self.token(service_node)?,
            r#type: self.attr(service_node, "type")?,
        };
        if service.r#type.is_none() && !looks_like_uri(&service.value) {
            return Err(EbmsError::new(
                ErrorCode::ValueInconsistent,
                format!(
                    "eb:Service {:?} has no type attribute and is not a URI",
                    service.value
                ),
            ));
        }
        let action = self.token(c.required("Action")?)?;
        let conversation_id = self.token(c.required("ConversationId")?)?;
        c.finish()?;
        Ok(CollaborationInfo {
            agreement_ref,
            service,
            action,
            conversation_id,
        })
    }

    fn properties(&self, id: NodeId) -> Result<Vec<Property>, EbmsError> {
        let mut c = self.children(id)?;
        let nodes = c.one_or_more("Property", self.limits.max_properties)?;
        c.finish()?;
        nodes
            .into_iter()
            .map(|n| {
                Ok(Property {
                    name: self.required_attr(n, "name")?,
                    value: simple_text(self.doc, n)?,
                    r#type: self.attr(n, "type")?,
                })
            })
            .collect()
    }

    fn payload_info(&self, id: NodeId) -> Result<Vec<PartInfo>, EbmsError> {
        let mut c = self.children(id)?;
        let nodes = c.one_or_more("PartInfo", self.limits.max_part_infos)?;
        c.finish()?;
        let mut parts: Vec<PartInfo> = Vec::with_capacity(nodes.len());
        for n in nodes {
            let part = self.part_info(n)?;
            if parts.iter().any(|p| p.href == part.href) {
                return Err(EbmsError::new(
                    ErrorCode::ValueInconsistent,
                    format!("two eb:PartInfo reference the same href {:?}", part.href),
                ));
            }
            parts.push(part);
        }
        Ok(parts)
    }

    fn part_info(&self, id: NodeId) -> Result<PartInfo, EbmsError> {
        let href = self.attr(id, "href")?;
        let mut c = self.children(id)?;
        if let Some(schema) = c.optional("Schema") {
            self.required_attr(schema, "location")?;
        }
        c.optional("Description");
        let properties = match c.optional("PartProperties") {
            Some(n) => self.properties(n)?,
            None => Vec::new(),
        };
        c.finish()?;
        let part = PartInfo { href, properties };
        match (&part.href, part.cid()) {
            (None, _) => {
                return Err(EbmsError::new(
                    ErrorCode::ExternalPayloadError,
                    "eb:PartInfo without href refers to a SOAP Body payload; AS4 payloads must be MIME attachments",
                ));
            }
            (Some(href), None) => {
                return Err(EbmsError::new(
                    ErrorCode::ExternalPayloadError,
                    format!(
                        "eb:PartInfo href {href:?} is not a cid: reference to a MIME attachment"
                    ),
                ));
            }
            (Some(_), Some("")) => {
                return Err(EbmsError::new(
                    ErrorCode::ExternalPayloadError,
                    "eb:PartInfo href \"cid:\" names no Content-ID",
                ));
            }
            _ => {}
        }
        if let Some(compression) = part.compression_type() {
            if compression.trim() != ns::COMPRESSION_GZIP {
                return Err(EbmsError::new(
                    ErrorCode::DecompressionFailure,
                    format!(
                        "unsupported CompressionType {compression:?}; only {} is defined by AS4",
                        ns::COMPRESSION_GZIP
                    ),
                ));
            }
            if part.mime_type().is_none_or(|m| m.trim().is_empty()) {
                return Err(EbmsError::new(
                    ErrorCode::ValueInconsistent,
                    "compressed eb:PartInfo has no MimeType part property",
                ));
            }
        }
        Ok(part)
    }

    fn signal_message(&self, id: NodeId) -> Result<SignalMessage, EbmsError> {
        let mut c = self.children(id)?;
        let message_info = self.message_info(c.required("MessageInfo")?)?;
        let message_id = message_info.message_id.clone();
        let pull = c.optional("PullRequest");
        let receipt = c.optional("Receipt");
        let mut errors = Vec::new();
        while let Some(e) = c.optional("Error") {
            errors.push(e);
            if errors.len() > self.limits.max_signal_items {
                return Err(EbmsError::invalid_header(format!(
                    "more than {} eb:Error in one signal",
                    self.limits.max_signal_items
                ))
                .with_ref_to_message_id(message_id));
            }
        }
        c.finish_allowing_foreign()
            .map_err(|e| e.with_ref_to_message_id(message_id.clone()))?;
        let signal = match (pull, receipt, errors.is_empty()) {
            (Some(p), None, true) => Signal::PullRequest(PullRequest {
                mpc: self.attr(p, "mpc")?,
            }),
            (None, Some(r), true) => Signal::Receipt(self.receipt(r)?),
            (None, None, false) => Signal::Errors(
                errors
                    .into_iter()
                    .map(|e| self.error_report(e))
                    .collect::<Result<_, _>>()?,
            ),
            (None, None, true) => {
                return Err(EbmsError::invalid_header(
                    "eb:SignalMessage carries no PullRequest, Receipt or Error",
                )
                .with_ref_to_message_id(message_id));
            }
            _ => {
                return Err(EbmsError::invalid_header(
                    "eb:SignalMessage mixes PullRequest, Receipt and Error; send one kind per signal",
                )
                .with_ref_to_message_id(message_id));
            }
        };
        Ok(SignalMessage {
            message_info,
            signal,
        })
    }

    fn error_report(&self, id: NodeId) -> Result<ErrorReport, EbmsError> {
        let mut c = self.children(id)?;
        let description = c
            .optional("Description")
            .map(|n| simple_text(self.doc, n))
            .transpose()?;
        let error_detail = c
            .optional("ErrorDetail")
            .map(|n| simple_text(self.doc, n))
            .transpose()?;
        c.finish()?;
        Ok(ErrorReport {
            error_code: self.required_attr(id, "errorCode")?,
            severity: self.required_attr(id, "severity")?,
            category: self.lenient_attr(id, "category"),
            origin: self.lenient_attr(id, "origin"),
            short_description: self.lenient_attr(id, "shortDescription"),
            ref_to_message_in_error: self.lenient_attr(id, "refToMessageInError"),
            description,
            error_detail,
        })
    }

    fn receipt(&self, id: NodeId) -> Result<Receipt, EbmsError> {
        let children = element_children(self.doc, id)?;
        let Some(&first) = children.first() else {
            return Err(EbmsError::new(
                ErrorCode::InvalidReceipt,
                "eb:Receipt is empty",
            ));
        };
        if is_element(
            self.doc,
            first,
            ns::EBBP_SIGNALS,
            "NonRepudiationInformation",
        ) {
            Ok(Receipt::NonRepudiation(self.non_repudiation(first)?))
        } else if is_element(self.doc, first, ns::EBMS, "UserMessage") {
            Ok(Receipt::UserMessageCopy)
        } else {
            Ok(Receipt::Other(display_name(self.doc, first)))
        }
    }

    fn non_repudiation(&self, id: NodeId) -> Result<Vec<NrReference>, EbmsError> {
        let invalid = |detail: String| EbmsError::new(ErrorCode::InvalidReceipt, detail);
        let mut out = Vec::new();
        for part in element_children(self.doc, id)? {
            if !is_element(self.doc, part, ns::EBBP_SIGNALS, "MessagePartNRInformation") {
                return Err(invalid(format!(
                    "unexpected {} in ebbp:NonRepudiationInformation",
                    display_name(self.doc, part)
                )));
            }
            let inner = element_children(self.doc, part)?;
            let [reference] = inner.as_slice() else {
                return Err(invalid(
                    "ebbp:MessagePartNRInformation must hold exactly one ds:Reference".into(),
                ));
            };
            if !is_element(self.doc, *reference, ns::DS, "Reference") {
                return Err(invalid(format!(
                    "ebbp:MessagePartNRInformation holds {} instead of ds:Reference",
                    display_name(self.doc, *reference)
                )));
            }
            out.push(self.ds_reference(*reference)?);
            if out.len() > self.limits.max_signal_items {
                return Err(invalid(format!(
                    "more than {} references in a receipt",
                    self.limits.max_signal_items
                )));
            }
        }
        if out.is_empty() {
            return Err(invalid(
                "ebbp:NonRepudiationInformation holds no MessagePartNRInformation".into(),
            ));
        }
        Ok(out)
    }

    fn ds_reference(&self, id: NodeId) -> Result<NrReference, EbmsError> {
        let invalid = |detail: &str| EbmsError::new(ErrorCode::InvalidReceipt, detail.to_owned());
        let uri = attribute(self.doc, id, "URI")
            .ok_or_else(|| invalid("ds:Reference in receipt has no URI"))?
            .to_owned();
        let mut transforms = Vec::new();
        let mut digest_method = None;
        let mut digest_value = None;
        for child in element_children(self.doc, id)? {
            if is_element(self.doc, child, ns::DS, "Transforms") && digest_method.is_none() {
                for t in element_children(self.doc, child)? {
                    if !is_element(self.doc, t, ns::DS, "Transform") {
                        return Err(invalid("ds:Transforms holds a non-Transform element"));
                    }
                    let algorithm = attribute(self.doc, t, "Algorithm")
                        .ok_or_else(|| invalid("ds:Transform has no Algorithm"))?
                        .to_owned();
                    let inclusive_prefixes = element_children(self.doc, t)?
                        .into_iter()
                        .find(|&n| is_element(self.doc, n, ns::EXC_C14N, "InclusiveNamespaces"))
                        .and_then(|n| attribute(self.doc, n, "PrefixList"))
                        .map(str::to_owned);
                    transforms.push(TransformSpec {
                        algorithm,
                        inclusive_prefixes,
                    });
                }
            } else if is_element(self.doc, child, ns::DS, "DigestMethod") && digest_method.is_none()
            {
                digest_method = Some(
                    attribute(self.doc, child, "Algorithm")
                        .ok_or_else(|| invalid("ds:DigestMethod has no Algorithm"))?
                        .to_owned(),
                );
            } else if is_element(self.doc, child, ns::DS, "DigestValue")
                && digest_method.is_some()
                && digest_value.is_none()
            {
                let text = simple_text(self.doc, child)?;
                digest_value = Some(text.split_whitespace().collect::<String>());
            } else {
                return Err(invalid(&format!(
                    "unexpected {} in ds:Reference",
                    display_name(self.doc, child)
                )));
            }
        }
        Ok(NrReference {
            uri,
            transforms,
            digest_method: digest_method
                .ok_or_else(|| invalid("ds:Reference has no DigestMethod"))?,
            digest_value_b64: digest_value
                .filter(|v| !v.is_empty())
                .ok_or_else(|| invalid("ds:Reference has no DigestValue"))?,
        })
    }
}
