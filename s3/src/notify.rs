//! Bucket event notifications: Put/GetBucketNotificationConfiguration in
//! AWS's format, checked by cairn-api's rules against the targets this
//! server has (`S3Config::notify_targets`) and stored with the bucket's
//! configuration; the store writes each matching event to its outbox and
//! cairn-events delivers it.

use cairn_api::notify::{
    DestinationKind, FilterRules, NotificationConfig, NotificationRule, parse_filter, target_of,
};
use cairn_api::{BucketChange, ObjectResult};
use s3s::dto::*;
use s3s::{S3Request, S3Response, S3Result};

use crate::convert::bucket_name;
use crate::errors::{IntoS3 as _, s3_error};
use crate::service::CairnS3;

/// One configuration of any of AWS's three lists, as a rule.
fn rule_in(
    kind: DestinationKind,
    arn: String,
    id: Option<String>,
    events: Vec<Event>,
    filter: Option<NotificationConfigurationFilter>,
) -> ObjectResult<NotificationRule> {
    let rules: FilterRules = filter
        .and_then(|f| f.key)
        .and_then(|k| k.filter_rules)
        .unwrap_or_default()
        .into_iter()
        .map(|r| {
            (
                r.name.map(|n| n.as_str().to_owned()).unwrap_or_default(),
                r.value.unwrap_or_default(),
            )
        })
        .collect();
    let (prefix, suffix) = parse_filter(&rules)?;
    Ok(NotificationRule {
        // AWS names a configuration without an id
        id: id
            .filter(|i| !i.is_empty())
            .unwrap_or_else(|| uuid::Uuid::new_v4().to_string()),
        kind,
        arn,
        events: events.into_iter().map(String::from).collect(),
        prefix,
        suffix,
    })
}

fn filter_out(r: &NotificationRule) -> Option<NotificationConfigurationFilter> {
    let rule = |name: &'static str, v: &Option<String>| {
        v.as_ref().map(|v| FilterRule {
            name: Some(FilterRuleName::from_static(name)),
            value: Some(v.clone()),
        })
    };
    let rules: Vec<FilterRule> = [
        rule(FilterRuleName::PREFIX, &r.prefix),
        rule(FilterRuleName::SUFFIX, &r.suffix),
    ]
    .into_iter()
    .flatten()
    .collect();
    (!rules.is_empty()).then_some(NotificationConfigurationFilter {
        key: Some(S3KeyFilter {
            filter_rules: Some(rules),
        }),
    })
}

fn some<T>(v: Vec<T>) -> Option<Vec<T>> {
    (!v.is_empty()).then_some(v)
}

fn events_out(r: &NotificationRule) -> Vec<Event> {
    r.events.iter().cloned().map(Event::from).collect()
}

fn config_in(c: NotificationConfiguration) -> ObjectResult<NotificationConfig> {
    let mut rules = Vec::new();
    for q in c.queue_configurations.unwrap_or_default() {
        rules.push(rule_in(
            DestinationKind::Queue,
            q.queue_arn,
            q.id,
            q.events,
            q.filter,
        )?);
    }
    for t in c.topic_configurations.unwrap_or_default() {
        rules.push(rule_in(
            DestinationKind::Topic,
            t.topic_arn,
            t.id,
            t.events,
            t.filter,
        )?);
    }
    for l in c.lambda_function_configurations.unwrap_or_default() {
        rules.push(rule_in(
            DestinationKind::Lambda,
            l.lambda_function_arn,
            l.id,
            l.events,
            l.filter,
        )?);
    }
    Ok(NotificationConfig { rules })
}

impl CairnS3 {
    /// Whether a rule names a target of this server (queues only: Cairn
    /// has no topics or functions).
    fn known_target(&self, r: &NotificationRule) -> bool {
        r.kind == DestinationKind::Queue
            && target_of(&r.arn, &self.region).is_some_and(|t| self.notify_targets.contains(&t))
    }

    pub(crate) async fn do_put_bucket_notification_configuration(
        &self,
        req: S3Request<PutBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<PutBucketNotificationConfigurationOutput>> {
        let input = req.input;
        let bucket = bucket_name(&input.bucket)?;
        let config = config_in(input.notification_configuration).map_err(s3_error)?;
        config
            .validate(|r| self.known_target(r))
            .map_err(s3_error)?;
        let change = (!config.rules.is_empty()).then_some(config);
        self.layer
            .update_bucket_config(&bucket, BucketChange::Notification(change))
            .await
            .s3()?;
        Ok(S3Response::new(
            PutBucketNotificationConfigurationOutput::default(),
        ))
    }

    pub(crate) async fn do_get_bucket_notification_configuration(
        &self,
        req: S3Request<GetBucketNotificationConfigurationInput>,
    ) -> S3Result<S3Response<GetBucketNotificationConfigurationOutput>> {
        let bucket = bucket_name(&req.input.bucket)?;
        let cfg = self.layer.get_bucket_config(&bucket).await.s3()?;
        let rules = cfg.notification.map(|n| n.rules).unwrap_or_default();
        let of = |k: DestinationKind| rules.iter().filter(move |r| r.kind == k);
        Ok(S3Response::new(GetBucketNotificationConfigurationOutput {
            event_bridge_configuration: None,
            queue_configurations: some(
                of(DestinationKind::Queue)
                    .map(|r| QueueConfiguration {
                        events: events_out(r),
                        filter: filter_out(r),
                        id: Some(r.id.clone()),
                        queue_arn: r.arn.clone(),
                    })
                    .collect(),
            ),
            topic_configurations: some(
                of(DestinationKind::Topic)
                    .map(|r| TopicConfiguration {
                        events: events_out(r),
                        filter: filter_out(r),
                        id: Some(r.id.clone()),
                        topic_arn: r.arn.clone(),
                    })
                    .collect(),
            ),
            lambda_function_configurations: some(
                of(DestinationKind::Lambda)
                    .map(|r| LambdaFunctionConfiguration {
                        events: events_out(r),
                        filter: filter_out(r),
                        id: Some(r.id.clone()),
                        lambda_function_arn: r.arn.clone(),
                    })
                    .collect(),
            ),
        }))
    }
}
