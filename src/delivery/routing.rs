//! Routing: which back-end subscriptions an inbound message goes to.
//!
//! Configuration (`as4gate.toml`):
//! - `[[delivery_queue]]`: a named queue with a time-to-live, the rule that decides which
//!   messages enter it (`[delivery_queue.match]`: P-Mode ids, services, actions,
//!   `finalRecipient` values and required message-property values; every list given must
//!   contain the message's value, an absent list matches anything) and the message properties
//!   it declares for subscriber filters.
//! - `[[subscription]]`: a subscription of one queue by one `[[backend]]`, with optional
//!   filters on the queue's declared properties (`filter = { municipality = "Riga" }` or a list
//!   of accepted values). A filter on an undeclared property is a configuration error.
//!
//! A message enters every queue whose rule it matches and goes to every subscription of those
//! queues whose filters it passes (publish/subscribe); each such (message, subscription) pair
//! is delivered and tracked on its own. A message that reaches no subscription is
//! dead-lettered with reason `no_route`. ebMS test-service messages are never routed.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::time::Duration;

use serde::{Deserialize, Deserializer};
use time::OffsetDateTime;

use super::config::BackendConfig;
use crate::queue::config::parse_duration;
use crate::store::InboundRecord;

/// Default of [`DeliveryQueueConfig::ttl`].
const DEFAULT_TTL: Duration = Duration::from_secs(7 * 24 * 3600);

/// Longest queue time-to-live (one year).
pub const MAX_TTL: Duration = Duration::from_secs(366 * 24 * 3600);

/// The message property that names the final recipient (eDelivery).
pub const FINAL_RECIPIENT: &str = "finalRecipient";

/// One delivery queue (`[[delivery_queue]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DeliveryQueueConfig {
    /// Unique name (what operators suspend and resume). Required.
    pub name: String,
    /// What the queue carries, for operators.
    #[serde(default)]
    pub description: String,
    /// How long a message may wait for delivery to each subscription; past it, attempts stop
    /// and the delivery is dead-lettered with reason `expired`. Default `"7d"`, at most
    /// [`MAX_TTL`].
    #[serde(default = "default_ttl", deserialize_with = "duration")]
    pub ttl: Duration,
    /// Which messages enter the queue (absent: all).
    #[serde(default, rename = "match")]
    pub rule: MatchRule,
    /// Message properties subscribers may filter on.
    #[serde(default)]
    pub properties: Vec<String>,
}

/// Which messages enter a queue. Every list given must contain the message's value.
#[derive(Debug, Clone, Default, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct MatchRule {
    /// P-Mode ids.
    pub pmodes: Option<Vec<String>>,
    /// Service values.
    pub services: Option<Vec<String>>,
    /// Action values.
    pub actions: Option<Vec<String>>,
    /// Values of the `finalRecipient` message property.
    pub final_recipients: Option<Vec<String>>,
    /// Required message-property values.
    #[serde(default)]
    pub properties: BTreeMap<String, Accepted>,
}

/// One value or a list of accepted values.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(untagged)]
pub enum Accepted {
    /// Exactly this value.
    One(String),
    /// Any of these values.
    Any(Vec<String>),
}

impl Accepted {
    fn accepts(&self, value: &str) -> bool {
        match self {
            Accepted::One(v) => v == value,
            Accepted::Any(vs) => vs.iter().any(|v| v == value),
        }
    }
}

/// One subscription (`[[subscription]]`).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SubscriptionConfig {
    /// Unique id (the queue's subscriber name; what operators disable and enable). Required.
    pub id: String,
    /// The `[[delivery_queue]]` subscribed to. Required.
    pub queue: String,
    /// The `[[backend]]` messages are pushed to. Required.
    pub backend: String,
    /// Filters on the queue's declared properties; all must pass.
    #[serde(default)]
    pub filter: BTreeMap<String, Accepted>,
}

/// Where one message goes: a subscription, its queue and when its TTL runs out.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Route {
    /// Subscription id.
    pub subscription: String,
    /// Delivery queue name.
    pub queue: String,
    /// When attempts stop.
    pub expires_at: OffsetDateTime,
}

/// The checked routing table.
#[derive(Debug, Clone, Default)]
pub struct Router {
    queues: Vec<DeliveryQueueConfig>,
    subscriptions: Vec<SubscriptionConfig>,
    by_id: HashMap<String, usize>,
}

impl Router {
    /// Checks `queues` and `subscriptions` against each other and `backends`; every problem
    /// found is returned at once.
    pub fn new(
        queues: Vec<DeliveryQueueConfig>,
        subscriptions: Vec<SubscriptionConfig>,
        backends: &[BackendConfig],
    ) -> Result<Router, Vec<String>> {
        let mut problems = Vec::new();
        let mut names = HashSet::new();
        for q in &queues {
            if q.name.trim().is_empty() {
                problems.push("delivery_queue: name must not be empty".to_owned());
            }
            if !names.insert(q.name.as_str()) {
                problems.push(format!("delivery_queue {}: duplicate name", q.name));
            }
            if q.ttl.is_zero() || q.ttl > MAX_TTL {
                problems.push(format!(
                    "delivery_queue {}: ttl must be between 1ms and {MAX_TTL:?}",
                    q.name
                ));
            }
        }
        let backend_ids: HashSet<&str> = backends.iter().map(|b| b.id.as_str()).collect();
        let mut by_id = HashMap::new();
        for (i, s) in subscriptions.iter().enumerate() {
            if s.id.trim().is_empty() || s.id == NO_ROUTE {
                problems.push(format!("subscription {:?}: invalid id", s.id));
            }
            if by_id.insert(s.id.clone(), i).is_some() {
                problems.push(format!("subscription {}: duplicate id", s.id));
            }
            if !backend_ids.contains(s.backend.as_str()) {
                problems.push(format!(
                    "subscription {}: no [[backend]] with id {:?}",
                    s.id, s.backend
                ));
            }
            match queues.iter().find(|q| q.name == s.queue) {
                None => problems.push(format!(
                    "subscription {}: no [[delivery_queue]] named {:?}",
                    s.id, s.queue
                )),
                Some(q) => {
                    for name in s.filter.keys() {
                        if !q.properties.contains(name) {
                            problems.push(format!(
                                "subscription {}: filter on {name:?}, which queue {} does not \
                                 declare in `properties`",
                                s.id, q.name
                            ));
                        }
                    }
                }
            }
        }
        if problems.is_empty() {
            Ok(Router {
                queues,
                subscriptions,
                by_id,
            })
        } else {
            Err(problems)
        }
    }

    /// Every subscription `message` goes to, received at `now`.
    pub fn route(&self, message: &InboundRecord, now: OffsetDateTime) -> Vec<Route> {
        let property = |name: &str| {
            message
                .message_properties
                .iter()
                .find(|p| p.name == name)
                .map(|p| p.value.as_str())
        };
        let mut routes = Vec::new();
        for q in self
            .queues
            .iter()
            .filter(|q| q.rule.matches(message, property))
        {
            for s in self.subscriptions.iter().filter(|s| s.queue == q.name) {
                let passes = s
                    .filter
                    .iter()
                    .all(|(name, accepted)| property(name).is_some_and(|v| accepted.accepts(v)));
                if passes && !routes.iter().any(|r: &Route| r.subscription == s.id) {
                    routes.push(Route {
                        subscription: s.id.clone(),
                        queue: q.name.clone(),
                        expires_at: now + q.ttl,
                    });
                }
            }
        }
        routes
    }

    /// The subscription with this id.
    pub fn subscription(&self, id: &str) -> Option<&SubscriptionConfig> {
        self.by_id.get(id).map(|&i| &self.subscriptions[i])
    }

    /// The queue with this name.
    pub fn queue(&self, name: &str) -> Option<&DeliveryQueueConfig> {
        self.queues.iter().find(|q| q.name == name)
    }

    /// All queues, in configuration order.
    pub fn queues(&self) -> &[DeliveryQueueConfig] {
        &self.queues
    }

    /// All subscriptions, in configuration order.
    pub fn subscriptions(&self) -> &[SubscriptionConfig] {
        &self.subscriptions
    }
}

/// The subscription name of a `no_route` dead letter.
pub const NO_ROUTE: &str = "*";

impl MatchRule {
    fn matches<'a>(&self, m: &InboundRecord, property: impl Fn(&str) -> Option<&'a str>) -> bool {
        let within = |list: &Option<Vec<String>>, value: Option<&str>| match list {
            None => true,
            Some(list) => value.is_some_and(|v| list.iter().any(|x| x == v)),
        };
        within(&self.pmodes, Some(&m.pmode_id))
            && within(&self.services, Some(&m.service))
            && within(&self.actions, Some(&m.action))
            && within(&self.final_recipients, property(FINAL_RECIPIENT))
            && self
                .properties
                .iter()
                .all(|(name, accepted)| property(name).is_some_and(|v| accepted.accepts(v)))
    }
}

fn default_ttl() -> Duration {
    DEFAULT_TTL
}

fn duration<'de, D: Deserializer<'de>>(deserializer: D) -> Result<Duration, D::Error> {
    let text = String::deserialize(deserializer)?;
    parse_duration(&text).map_err(serde::de::Error::custom)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::StoredProperty;

    fn backend(id: &str) -> BackendConfig {
        toml::from_str(&format!(
            "id = {id:?}\nbinding = \"rest\"\nurl = \"http://127.0.0.1:1/\""
        ))
        .unwrap()
    }

    fn router(text: &str) -> Result<Router, Vec<String>> {
        #[derive(Deserialize)]
        struct T {
            #[serde(default)]
            delivery_queue: Vec<DeliveryQueueConfig>,
            #[serde(default)]
            subscription: Vec<SubscriptionConfig>,
        }
        let t: T = toml::from_str(text).unwrap();
        Router::new(
            t.delivery_queue,
            t.subscription,
            &[backend("a"), backend("b")],
        )
    }

    fn message(props: &[(&str, &str)]) -> InboundRecord {
        InboundRecord {
            message_id: "m".into(),
            pmode_id: "p1".into(),
            from_party: "x".into(),
            from_role: "r".into(),
            to_party: "y".into(),
            to_role: "r".into(),
            service: "svc".into(),
            service_type: None,
            action: "act".into(),
            conversation_id: "c".into(),
            agreement: None,
            mpc: "mpc".into(),
            ref_to_message_id: None,
            message_timestamp: "t".into(),
            message_properties: props
                .iter()
                .map(|(n, v)| StoredProperty {
                    name: (*n).into(),
                    value: (*v).into(),
                    r#type: None,
                })
                .collect(),
            is_test: false,
            signer_certificate: None,
            envelope: vec![],
            payloads: vec![],
            receipt: vec![],
            received_at: "t".into(),
        }
    }

    const PUBSUB: &str = r#"
        [[delivery_queue]]
        name = "q"
        ttl = "1h"
        properties = ["municipality", "type"]
        match = { pmodes = ["p1"], final_recipients = ["urn:x:1"] }

        [[subscription]]
        id = "all"
        queue = "q"
        backend = "a"

        [[subscription]]
        id = "riga"
        queue = "q"
        backend = "b"
        filter = { municipality = "Riga", type = ["X", "Y"] }
    "#;

    #[test]
    fn publish_subscribe_with_filters() {
        let r = router(PUBSUB).unwrap();
        let now = OffsetDateTime::UNIX_EPOCH;
        let ids = |m: &InboundRecord| -> Vec<String> {
            r.route(m, now)
                .into_iter()
                .map(|r| r.subscription)
                .collect()
        };
        let riga = message(&[
            ("finalRecipient", "urn:x:1"),
            ("municipality", "Riga"),
            ("type", "Y"),
        ]);
        assert_eq!(ids(&riga), ["all", "riga"]);
        let jelgava = message(&[
            ("finalRecipient", "urn:x:1"),
            ("municipality", "Jelgava"),
            ("type", "Y"),
        ]);
        assert_eq!(ids(&jelgava), ["all"]);
        // Wrong final recipient: the queue's rule does not match, so nothing is routed.
        assert!(ids(&message(&[("finalRecipient", "urn:x:2")])).is_empty());
        let route = &r.route(&riga, now)[0];
        assert_eq!(route.queue, "q");
        assert_eq!(route.expires_at, now + Duration::from_secs(3600));
    }

    #[test]
    fn every_problem_is_reported() {
        let problems = router(
            r#"
            [[delivery_queue]]
            name = "q"
            ttl = "0s"
            properties = ["municipality"]
            [[delivery_queue]]
            name = "q"
            [[subscription]]
            id = "s"
            queue = "nope"
            backend = "zzz"
            [[subscription]]
            id = "s"
            queue = "q"
            backend = "a"
            filter = { city = "Riga" }
            "#,
        )
        .unwrap_err();
        let all = problems.join("\n");
        for expected in [
            "duplicate name",
            "ttl must be",
            "no [[delivery_queue]] named \"nope\"",
            "no [[backend]] with id \"zzz\"",
            "duplicate id",
            "filter on \"city\"",
        ] {
            assert!(all.contains(expected), "missing {expected:?} in:\n{all}");
        }
    }
}
