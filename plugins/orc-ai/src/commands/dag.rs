//! `AI.DAGEXECUTE` and `AI.DAGEXECUTE_RO`.

use redis_module::{Context, RedisResult, RedisString, RedisValue};

use super::{
    bytes, e, err_string, get_model, get_script, key_string, mark_keys, no_transactions, typed,
};
use crate::{
    args::Reply,
    blocked::Ticket,
    dag,
    exec::{Job, Work, submit},
    objects::{ModelValue, ScriptValue},
    state::limits,
    tensor::Tensor,
    types::TENSOR_TYPE,
};

/// The keyspace as the DAG parser sees it.
struct Keys<'a>(&'a Context);

impl dag::Keyspace for Keys<'_> {
    type Model = ModelValue;
    type Script = ScriptValue;

    fn tensor(&self, key: &[u8]) -> Result<Tensor, Reply> {
        let k = self.0.open_key(&key_string(self.0, key));
        match typed(k.get_value::<Tensor>(&TENSOR_TYPE)) {
            Ok(Some(t)) => Ok(t.clone()),
            Ok(None) => Err(Reply::new(
                "ERR tensor key is empty or in a different shard",
            )),
            Err(e) => Err(Reply(err_string(e))),
        }
    }
    fn model(&self, key: &[u8]) -> Result<(ModelValue, String), Reply> {
        let m = get_model(self.0, &key_string(self.0, key)).map_err(|e| Reply(err_string(e)))?;
        let device = m.0.meta.device.clone();
        Ok((m, device))
    }
    fn script(&self, key: &[u8]) -> Result<(ScriptValue, String), Reply> {
        let s = get_script(self.0, &key_string(self.0, key)).map_err(|e| Reply(err_string(e)))?;
        let device = s.0.meta.device.clone();
        Ok((s, device))
    }
}

fn run_dag(ctx: &Context, args: Vec<RedisString>, read_only: bool) -> RedisResult {
    let a = bytes(&args);
    if ctx.is_keys_position_request() {
        return mark_keys(ctx, dag::key_positions(&a));
    }
    no_transactions(ctx)?;
    let d = dag::parse(&a[1..], read_only, &Keys(ctx), &limits()).map_err(e)?;
    let device = d.device.clone();
    let timeout = d.timeout_ms;
    submit(&device, || {
        Job::new(
            Work::Dag(Box::new(d)),
            Vec::new(),
            Vec::new(),
            Ticket::block(ctx, timeout),
        )
    })
    .map_err(e)?;
    Ok(RedisValue::NoReply)
}

/// `AI.DAGEXECUTE [LOAD n k...] [PERSIST n k...] [ROUTING k] [TIMEOUT ms] |> op ...`
pub fn dagexecute(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run_dag(ctx, args, false)
}

/// `AI.DAGEXECUTE_RO [LOAD n k...] [ROUTING k] [TIMEOUT ms] |> op ...`
pub fn dagexecute_ro(ctx: &Context, args: Vec<RedisString>) -> RedisResult {
    run_dag(ctx, args, true)
}
