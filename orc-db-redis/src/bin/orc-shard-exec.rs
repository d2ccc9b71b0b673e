//! `orc-shard-exec`: start a Redis shard bound to network interfaces looked up on this
//! node (see `orc_db_redis::shard_exec`). Planned by the Redis deployment; not for users.

use std::process::ExitCode;

use orc_db_redis::shard_exec::ShardExec;

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let e = match ShardExec::parse(&args) {
        Ok(s) => s.exec(),
        Err(e) => e,
    };
    eprintln!("orc-shard-exec: {e}");
    ExitCode::FAILURE
}
