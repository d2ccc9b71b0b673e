//! The async client (feature `tokio`): the same [`Client`] run on tokio's blocking pool, so
//! the protocol logic is shared and an async caller never blocks its executor.

use std::sync::{Arc, Mutex};

use crate::{
    client::Client,
    config::Config,
    error::{Error, Result},
};

/// An async handle to a [`Client`]; cheap to clone, calls are serialised.
#[derive(Clone, Debug)]
pub struct AsyncClient {
    inner: Arc<Mutex<Client>>,
}

impl AsyncClient {
    /// Connect with `config`.
    pub async fn new(config: Config) -> Result<AsyncClient> {
        let c = tokio::task::spawn_blocking(move || Client::new(config))
            .await
            .map_err(|e| Error::invalid(format!("the connection task failed: {e}")))??;
        Ok(AsyncClient {
            inner: Arc::new(Mutex::new(c)),
        })
    }

    /// Run any client call off the async executor:
    /// `client.call(|c| c.get_tensor("u")).await`.
    pub async fn call<T, F>(&self, f: F) -> Result<T>
    where
        T: Send + 'static,
        F: FnOnce(&mut Client) -> Result<T> + Send + 'static,
    {
        let inner = self.inner.clone();
        tokio::task::spawn_blocking(move || {
            let mut c = inner.lock().unwrap_or_else(|p| p.into_inner());
            f(&mut c)
        })
        .await
        .map_err(|e| Error::invalid(format!("the client task failed: {e}")))?
    }
}
