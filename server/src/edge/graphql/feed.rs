//! Changed rows read once per process and shared by every subscriber of a subscription: 10,000
//! `incidentUpdates` or `approvalUpdates` subscribers cost one read per event, not 10,000.

use std::future::Future;
use std::sync::Arc;

use tokio::sync::broadcast;

/// The latest version of each changed row, for every subscriber.
pub struct Feed<T>(broadcast::Sender<Arc<T>>);

impl<T> Clone for Feed<T> {
    fn clone(&self) -> Self {
        Feed(self.0.clone())
    }
}

impl<T: Send + Sync + 'static> Feed<T> {
    /// Reads each id heard on `updates` with `load` (only while someone listens) and shares
    /// the row. `what` names the rows in logs.
    pub fn start<F, Fut, E>(
        mut updates: broadcast::Receiver<i32>,
        what: &'static str,
        load: F,
    ) -> Feed<T>
    where
        F: Fn(i32) -> Fut + Send + 'static,
        Fut: Future<Output = Result<Option<T>, E>> + Send,
        E: std::fmt::Display,
    {
        use broadcast::error::RecvError;
        let (feed, _) = broadcast::channel(1024);
        let sender: broadcast::Sender<Arc<T>> = feed.clone();
        tokio::spawn(async move {
            loop {
                match updates.recv().await {
                    Ok(id) => {
                        if sender.receiver_count() == 0 {
                            continue;
                        }
                        match load(id).await {
                            Ok(Some(row)) => drop(sender.send(Arc::new(row))),
                            Ok(None) => {}
                            Err(error) => tracing::warn!(%error, id, what, "update not read"),
                        }
                    }
                    Err(RecvError::Lagged(missed)) => {
                        tracing::warn!(missed, what, "feed lagged; subscribers miss updates")
                    }
                    Err(RecvError::Closed) => return,
                }
            }
        });
        Feed(feed)
    }

    /// Rows from now on; a lagging subscriber skips, it does not fail.
    pub fn subscribe(&self) -> impl futures_util::Stream<Item = Arc<T>> + use<T> {
        use futures_util::StreamExt;
        tokio_stream::wrappers::BroadcastStream::new(self.0.subscribe())
            .filter_map(|row| async move { row.ok() })
    }
}
