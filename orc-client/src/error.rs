//! The one error type of `orc-client`.

/// A `Result` with [`enum@Error`].
pub type Result<T, E = Error> = std::result::Result<T, E>;

/// What can go wrong talking to the database.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// The configuration (environment or builder) is invalid.
    #[error("invalid client configuration: {0}")]
    Config(String),
    /// The database could not be reached within the connection timeout.
    #[error("could not connect to the database at {addresses} within {seconds} s: {message}")]
    Connection {
        /// The addresses tried.
        addresses: String,
        /// The timeout.
        seconds: u64,
        /// The last error.
        message: String,
    },
    /// A command kept failing for transient reasons until the command timeout passed.
    #[error("`{command}` did not succeed within {seconds} s: {message}")]
    Timeout {
        /// The command.
        command: String,
        /// The timeout.
        seconds: u64,
        /// The last error.
        message: String,
    },
    /// The server answered with an error.
    #[error("`{command}` failed: {message}")]
    Server {
        /// The command.
        command: String,
        /// The server's message.
        message: String,
    },
    /// The database has no orc-ai (RedisAI) module, which the call needs.
    #[error(
        "`{command}` needs the orc-ai module, which this database has not loaded (start it with `orc db start`, which loads orc-ai, or load a RedisAI-compatible module): {message}"
    )]
    ModuleMissing {
        /// The command.
        command: String,
        /// The server's message.
        message: String,
    },
    /// A key, tensor, dataset, model or script does not exist.
    #[error("{what} `{name}` does not exist")]
    NotFound {
        /// What kind of thing.
        what: &'static str,
        /// Its name.
        name: String,
    },
    /// Arguments that cannot be valid (empty names, wrong buffer sizes, type mismatches).
    #[error("{0}")]
    Invalid(String),
    /// A command that is not safe to repeat lost its reply: it may or may not have run,
    /// and was not sent again.
    #[error("`{command}` may or may not have run: {message}")]
    Uncertain {
        /// The command.
        command: String,
        /// What happened.
        message: String,
    },
    /// A write that ran, but that fewer replicas than asked for
    /// ([`Config::wait_replicas`](crate::Config::wait_replicas)) confirmed within the wait
    /// timeout (or the wait failed: the shard was lost just after it answered): it is lost
    /// if its shard's node fails before the replicas catch up.
    #[error(
        "`{command}` was written, but only {confirmed} of {wanted} replica(s) confirmed it within the wait timeout"
    )]
    NotReplicated {
        /// The command.
        command: String,
        /// Replicas that confirmed it.
        confirmed: i64,
        /// Replicas asked for.
        wanted: u32,
    },
    /// A reply that does not have the expected shape.
    #[error("unexpected reply to `{command}`: {message}")]
    Protocol {
        /// The command.
        command: String,
        /// What was wrong.
        message: String,
    },
}

impl Error {
    /// An invalid-argument error.
    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::Invalid(msg.into())
    }
}
