//! Starting lost servers again: each comes back on its host, with its port, configuration
//! and data directory, and rejoins the database (in a cluster, a master whose replica took
//! over while it was gone comes back as that replica's replica).

use std::time::{Duration, Instant};

use orc_core::{Error, JobStatus, PlanRequest, Result, ShardSpec};

use crate::Orchestrator;

/// How long servers started again must keep answering before a heal is done.
const STAYS_UP: Duration = Duration::from_secs(5);

/// Rounds of starting servers again, at most, in one heal.
const ROUNDS: usize = 3;

/// One server [`Orchestrator::heal`] looked at.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[non_exhaustive]
pub struct Healed {
    /// The server's index.
    pub index: usize,
    /// Its address.
    pub address: String,
    /// Started again (`true`), or left as it was (`false`, with the reason in `note`).
    pub restarted: bool,
    /// What was done or why not.
    pub note: String,
}

impl Orchestrator {
    /// Start again every server that does not answer and whose process is gone (a server
    /// still running as far as its launcher knows, on a node cut off for instance, is left
    /// alone), then wait up to `timeout` until the database has them all back. Servers
    /// launched as one MPMD step (`--single-step`) cannot be started one by one. Under a
    /// batch job the server goes back into the job on its node, or, when the node has left
    /// the job (a node lost while it ran), into a batch job of its own on that node.
    ///
    /// A server started again is watched for five seconds more and started
    /// once more if it went away meanwhile (at most three times in all): a workload
    /// manager may still be taking a returned node out of the job it left, and end the
    /// step just started there.
    pub fn heal(&mut self, timeout: Duration) -> Result<Vec<Healed>> {
        if let Some(other) = self.runs_elsewhere() {
            return Err(Error::config(format!(
                "orchestrator `{}` runs on host {other}: heal it there",
                self.db_identifier()
            )));
        }
        let _lock = crate::lock::DbLock::acquire(self.home(), self.db_identifier())?;
        let deadline = Instant::now() + timeout;
        let mut healed = self.heal_round(timeout, deadline)?;
        for _ in 1..ROUNDS {
            let restarted: Vec<usize> = healed
                .iter()
                .filter(|h| h.restarted)
                .map(|h| h.index)
                .collect();
            if restarted.is_empty() || !self.lost_again(&restarted, deadline)? {
                break;
            }
            tracing::warn!(
                servers = ?restarted,
                "a server started again went away within seconds; starting it once more"
            );
            healed = self.heal_round(timeout, deadline)?;
        }
        Ok(healed)
    }

    /// Whether one of the servers `restarted` stops answering within [`STAYS_UP`].
    fn lost_again(&self, restarted: &[usize], deadline: Instant) -> Result<bool> {
        let until = (Instant::now() + STAYS_UP).min(deadline);
        let addresses = self.record.addresses();
        while Instant::now() < until {
            std::thread::sleep(Duration::from_millis(250));
            for &i in restarted {
                if !self.deployment.probe(&addresses[i])?.ready {
                    return Ok(true);
                }
            }
        }
        Ok(false)
    }

    /// One round of [`Orchestrator::heal`]: start again the servers that are gone, and
    /// wait until they answer and the database is whole, by `deadline` (`timeout` is the
    /// whole heal's, for messages).
    fn heal_round(&mut self, timeout: Duration, deadline: Instant) -> Result<Vec<Healed>> {
        // A server lost with its node may still count as running until the workload
        // manager notices the node is back (or gone): wait a while for it to say so.
        let left = deadline.saturating_duration_since(Instant::now());
        let settle = Instant::now() + left.min(Duration::from_secs(60)) / 2;
        let mut status = self.status()?;
        while Instant::now() < settle
            && status
                .health
                .shards
                .iter()
                .zip(&status.steps)
                .any(|(h, st)| {
                    !h.reachable && matches!(st, Ok(st) if st.status == JobStatus::Running)
                })
        {
            std::thread::sleep(Duration::from_secs(1));
            status = self.status()?;
        }
        let mut out = Vec::new();
        let mut respawn = Vec::new();
        for (i, shard) in status.health.shards.iter().enumerate() {
            if shard.reachable {
                continue;
            }
            let gone = match &status.steps[i] {
                Ok(st) => st.status != JobStatus::Running,
                Err(_) => false,
            };
            let shared = self
                .record
                .shards
                .iter()
                .filter(|s| s.step == self.record.shards[i].step)
                .count()
                > 1;
            let note = if shared {
                Some(
                    "launched as one step with other servers (--single-step): stop and start the database instead",
                )
            } else if !gone {
                Some(
                    "does not answer, but its process still runs as far as the launcher knows (a node cut off?): not started again",
                )
            } else {
                None
            };
            match note {
                Some(n) => out.push(Healed {
                    index: i,
                    address: shard.address.clone(),
                    restarted: false,
                    note: n.into(),
                }),
                None => respawn.push(i),
            }
        }
        for &i in &respawn {
            self.respawn(i)?;
            out.push(Healed {
                index: i,
                address: self.record.shards[i].address.to_string(),
                restarted: true,
                note: format!("started again on {}", self.record.shards[i].host),
            });
        }
        if respawn.is_empty() {
            return Ok(out);
        }
        let addresses = self.record.addresses();
        for &i in &respawn {
            let mut delay = Duration::from_millis(5);
            loop {
                let probe = self.deployment.probe(&addresses[i])?;
                if probe.ready {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::Timeout {
                        what: format!(
                            "server {i} ({}) started again, but does not answer: {}",
                            addresses[i],
                            probe.detail.unwrap_or_default()
                        ),
                        seconds: timeout.as_secs_f64(),
                    });
                }
                std::thread::sleep(delay);
                delay = (delay * 2).min(Duration::from_millis(100));
            }
        }
        // Every server answers again: wait until the database says it is whole (a cluster
        // takes a server back through its own nodes file; nothing is formed anew).
        if out.iter().all(|h| h.restarted) {
            loop {
                let health = self.deployment.health(&addresses)?;
                if health.ok {
                    break;
                }
                if Instant::now() >= deadline {
                    return Err(Error::Timeout {
                        what: format!(
                            "the servers started again, but the database is not whole: {}",
                            health.problems.join("; ")
                        ),
                        seconds: timeout.as_secs_f64(),
                    });
                }
                std::thread::sleep(Duration::from_millis(100));
            }
        }
        Ok(out)
    }

    /// Launch server `i` again as it was planned, and record its new step.
    fn respawn(&mut self, i: usize) -> Result<()> {
        let rec = self.record.shards[i].clone();
        let mut spec = ShardSpec::new(
            rec.index,
            rec.name.clone(),
            rec.host.clone(),
            rec.address.port,
        );
        // The address it bound before, which its node still has.
        spec.bind = vec![rec.address.host.clone()];
        let mut steps = self.deployment.plan(
            &PlanRequest::new(
                self.record.settings.clone(),
                vec![spec],
                self.record.dir.clone(),
            )
            .rejoining(),
        )?;
        let mut step = steps.pop().ok_or_else(|| Error::Plugin {
            plugin: self.deployment.name().into(),
            method: "plan".into(),
            message: "planned no step for one server".into(),
        })?;
        let id = match &self.record.batch_job {
            Some(job) => {
                step.run.allocation = Some(job.0.clone());
                match self.launcher.launch(&step) {
                    Ok(id) => id,
                    Err(in_job) => {
                        // A node lost while the job ran leaves the job (Slurm's --no-kill):
                        // the server goes back to its node as a batch job of its own, which
                        // `orc db stop` cancels with the rest.
                        tracing::info!(
                            server = i,
                            "cannot start it inside batch job {} ({in_job}); submitting it as a job of its own",
                            job.0
                        );
                        step.run.allocation = None;
                        self.launcher.launch(&step).map_err(|alone| {
                            Error::launcher(
                                self.launcher.name(),
                                format!(
                                    "starting server {i} again on {}: inside batch job {}: {in_job}; as a job of its own: {alone}",
                                    rec.host, job.0
                                ),
                            )
                        })?
                    }
                }
            }
            None => self.launcher.launch(&step).map_err(|e| {
                Error::launcher(
                    self.launcher.name(),
                    format!("starting server {i} again on {}: {e}", rec.host),
                )
            })?,
        };
        tracing::info!(server = i, step = %id, host = %rec.host, "server started again");
        self.record.shards[i].step = id;
        self.record.shards[i].stdout = step.stdout.clone();
        self.record.shards[i].stderr = step.stderr.clone();
        self.record.save(&self.record_path)
    }
}
