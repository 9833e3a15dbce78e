//! Live updates: the WebSocket protocol, the connection store and notifier ports, and the broadcast use case
//! that every host runs — the `acidizer-stream` Lambda on a stream batch, `acidizer serve` on each commit.

mod broadcast;
mod ports;
mod protocol;
mod session;
mod stream_batch;
mod sweep;
mod width;

pub use broadcast::{BroadcastReport, Broadcaster, DEFAULT_MAX_IN_FLIGHT, coalesce};
pub use ports::{
    BroadcastProgress, ConnectionStore, ConnectionStoreError, NewestState, Notifier, NotifyError, SUBSCRIPTION_TTL,
    SubscriberPage,
};
pub use protocol::{ClientAction, MAX_CLIENT_FRAME_BYTES, Outbound, ProtocolError, parse_client_message};
pub use session::answer;
pub use stream_batch::{StreamRecord, failed_records};
