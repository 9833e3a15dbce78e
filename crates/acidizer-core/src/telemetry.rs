//! The metrics acidizer records, through the `metrics` facade. The Lambda functions emit them as CloudWatch
//! Embedded Metric Format; `infra/template.yaml`'s alarms and dashboard use these names.

/// Increments committed.
pub const INCREMENTS: &str = "Increments";
/// Decrements committed.
pub const DECREMENTS: &str = "Decrements";
/// Changes refused at a bound (a decrement at 0, an increment at the ceiling): 409s.
pub const BOUND_REFUSALS: &str = "BoundRefusals";
/// Changes answered from a remembered answer.
pub const REPLAYS: &str = "Replays";
/// Changes that lost a race on the counter and were tried again.
pub const CONFLICT_RETRIES: &str = "ConflictRetries";
/// Answers with a 5xx status, by the function version that gave them (dimension `Version`).
pub const SERVER_ERRORS: &str = "ServerErrors";
/// How long the store took to answer a change, in milliseconds.
pub const STORE_LATENCY: &str = "StoreLatency";
/// Messages a broadcast delivered.
pub const SUBSCRIBERS_REACHED: &str = "SubscribersReached";
/// Connections a broadcast found gone, and forgot.
pub const GONE_CONNECTIONS: &str = "GoneConnections";
/// Subscribers a broadcast gave up on.
pub const POSTS_FAILED: &str = "PostsFailed";
/// How long a broadcast took, in milliseconds.
pub const BROADCAST_DURATION: &str = "BroadcastDuration";
/// Posts the Management API answered "throttled" (each is tried again).
pub const POSTS_THROTTLED: &str = "PostsThrottled";
/// How many posts a broadcast allowed in flight (sampled once per page of subscribers).
pub const POSTS_IN_FLIGHT: &str = "PostsInFlight";
/// How old the state a broadcast sends is, from its commit, in milliseconds (sampled once per page).
pub const BROADCAST_STALENESS: &str = "BroadcastStaleness";

/// Every metric above.
pub const ALL: [&str; 14] = [
    INCREMENTS,
    DECREMENTS,
    BOUND_REFUSALS,
    REPLAYS,
    CONFLICT_RETRIES,
    SERVER_ERRORS,
    STORE_LATENCY,
    SUBSCRIBERS_REACHED,
    GONE_CONNECTIONS,
    POSTS_FAILED,
    BROADCAST_DURATION,
    POSTS_THROTTLED,
    POSTS_IN_FLIGHT,
    BROADCAST_STALENESS,
];

/// An error and its causes on one line, each said once (`outer: cause: root cause`): what logs and internal error
/// details carry, instead of debug dumps of nested error structures.
pub fn error_chain(error: &(dyn std::error::Error + 'static)) -> String {
    let mut chain = error.to_string();
    let mut last = chain.clone();
    let mut cause = error.source();
    while let Some(source) = cause {
        let said = source.to_string();
        if !last.contains(&said) {
            chain.push_str(": ");
            chain.push_str(&said);
        }
        last = said;
        cause = source.source();
    }
    chain
}

#[cfg(test)]
mod tests {
    use super::error_chain;

    #[derive(Debug, thiserror::Error)]
    #[error("cannot reach the table")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn an_error_chain_is_one_line_with_each_cause_once() {
        let root = std::io::Error::new(std::io::ErrorKind::ConnectionRefused, "connection refused");
        assert_eq!(error_chain(&Outer(root)), "cannot reach the table: connection refused");
        let plain = std::io::Error::other("disk full");
        assert_eq!(error_chain(&plain), "disk full");
    }
}
