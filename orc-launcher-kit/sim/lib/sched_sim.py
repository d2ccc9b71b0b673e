"""orc's batch scheduler simulator on a one-node "cluster": PBS Pro (qsub, qstat, qdel),
LSF (bsub, bjobs, bkill) and, from orc-launcher-kit/sim/cobalt/bin, Cobalt (qsub, qstat, qdel).

Jobs really run: the submit command starts the script with bash in its own session, with
the variables the scheduler sets (PBS_JOBID, PBS_NODEFILE, ...; LSB_JOBID,
LSB_MCPU_HOSTS, ...), its output going to the -o/-e files. A small supervisor process
waits for it and records the exit status, so any later query sees the job as running or
finished with its exit status. Answers follow the real tools' formats: `qsub` prints
`<seq>.<server>`, `qstat -f -F json` prints the JSON document, unknown ids give
`qstat: Unknown Job Id <id>` (exit 153), `qdel` of a running job ends it with
Exit_status 271 (256 + SIGTERM); `bsub` prints `Job <id> is submitted to queue <normal>.`,
`bjobs -noheader -o "jobid stat exit_code"` prints `id STAT code` (`-` when none),
unknown ids give `Job <id> is not found`, `bkill` prints `Job <id> is being terminated`.
"""
import fcntl
import json
import os
import signal
import socket
import sys
import time

SERVER = "sim"
SPOOL = os.environ.get("ORC_SIM_SPOOL") or f"/tmp/orc-sim-{os.getuid()}"
# Several nodes (orc's multi-node test bed): their names, and a command (words split at
# spaces) that runs a command on one (`$ORC_SIM_ON_NODE NODE CMD...`). Jobs then get the
# first nodes they ask for, PBS job scripts run on their first node, and the parallel
# launchers start each rank on its node. Unset: a one-node cluster, this machine.
NODES = [n for n in os.environ.get("ORC_SIM_NODES", "").split(",") if n]
# Seconds every batch job waits in the queue before it starts (default 0), with the
# scheduler's reason for it (PBS comment, LSF pending reason).
PEND_SECS = float(os.environ.get("ORC_SIM_PEND_SECS") or 0)
ON_NODE = os.environ.get("ORC_SIM_ON_NODE", "").split()


def _job_nodes(count):
    """The hosts of a job asking for `count` nodes, or None when there are not enough."""
    if not NODES:
        return [socket.gethostname().split(".")[0]]
    count = max(count, 1)
    return NODES[:count] if count <= len(NODES) else None


def _pbs_node_count(opts):
    """Nodes a PBS job asks for (`-l select=N:...` or `-l nodes=N`)."""
    for res in opts.get("-l", []):
        for part in res.split(","):
            for key in ("select=", "nodes="):
                if part.startswith(key):
                    try:
                        return int(part[len(key):].split(":")[0])
                    except ValueError:
                        pass
    return 1


def _path(job_id, name):
    return os.path.join(SPOOL, job_id, name)


def _load(job_id):
    try:
        with open(_path(job_id, "job.json")) as f:
            return json.load(f)
    except (OSError, ValueError):
        return None


def _save(job_id, job):
    tmp = _path(job_id, "job.json.tmp")
    with open(tmp, "w") as f:
        json.dump(job, f)
    os.replace(tmp, _path(job_id, "job.json"))


def _next_id(suffix=f".{SERVER}"):
    os.makedirs(SPOOL, exist_ok=True)
    with open(os.path.join(SPOOL, "seq"), "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        f.seek(0)
        n = int(f.read().strip() or "0") + 1
        f.seek(0)
        f.truncate()
        f.write(str(n))
    return f"{n}{suffix}"


def _directives(script, prefix="#PBS"):
    opts = {}
    for line in script.splitlines():
        if not line.startswith(prefix):
            continue
        words = line[len(prefix):].split(None, 1)
        if len(words) == 2 and words[0].startswith("-"):
            opts.setdefault(words[0], []).append(words[1].strip())
    return opts


def qsub(argv):
    args = [a for a in argv if not a.startswith("-")]
    if not args:
        script = sys.stdin.read()
    else:
        try:
            with open(args[0]) as f:
                script = f.read()
        except OSError:
            print(f"qsub: script file:: No such file or directory", file=sys.stderr)
            return 2
    opts = _directives(script)
    if "-q" in opts and opts["-q"][-1] != "workq":
        print("qsub: Unknown queue", file=sys.stderr)
        return 170
    job_id = _next_id()
    os.makedirs(os.path.join(SPOOL, job_id))
    name = opts.get("-N", ["STDIN"])[-1]
    cwd = os.getcwd()
    seq = job_id.split(".")[0]
    out = opts.get("-o", [os.path.join(cwd, f"{name}.o{seq}")])[-1]
    err = opts.get("-e", [os.path.join(cwd, f"{name}.e{seq}")])[-1]
    with open(_path(job_id, "script"), "w") as f:
        f.write(script)
    want = _pbs_node_count(opts)
    nodes = _job_nodes(want)
    if nodes is None:
        # Accepted, as PBS does, and left queued for ever with the scheduler's comment.
        job = {"name": name, "state": "Q", "pid": None, "exit": None, "out": out,
               "err": err, "comment": "Can Never Run: Insufficient amount of resource: "
               f"nodes (R: {want} A: {len(NODES)} T: {len(NODES)})"}
        _save(job_id, job)
        print(job_id)
        return 0
    nodefile = _path(job_id, "nodefile")
    with open(nodefile, "w") as f:
        f.write("".join(n + "\n" for n in nodes))
    job = {"name": name, "state": "Q", "pid": None, "exit": None, "out": out, "err": err,
           "nodes": nodes, "runs_on": nodes[0] if NODES else None}
    _save(job_id, job)
    env = dict(os.environ, PBS_JOBID=job_id, PBS_NODEFILE=nodefile, PBS_O_WORKDIR=cwd,
               PBS_JOBNAME=name, PBS_ENVIRONMENT="PBS_BATCH")
    _start(job_id, job, env)
    print(job_id)
    return 0


def _start(job_id, job, env, cwd=None):
    """Run the job's script under a detached supervisor; returns once it is started (or,
    with ORC_SIM_PEND_SECS, queued: the supervisor starts it after that many seconds)."""
    if PEND_SECS > 0:
        job.update(held=True, comment="Not Running: Insufficient amount of resource: ncpus",
                   pend_reason="New job is waiting for scheduling;")
        _save(job_id, job)
    if os.fork() == 0:  # the supervisor: detached from the submitter and its caller
        os.setsid()
        if os.fork() != 0:
            os._exit(0)
        # Let go of the caller's pipes, so `$(qsub ...)` returns at once.
        devnull = os.open(os.devnull, os.O_RDWR)
        for fd in (0, 1, 2):
            os.dup2(devnull, fd)
        _supervise(job_id, job, env, cwd)
        os._exit(0)
    os.wait()


def _supervise(job_id, job, env, cwd=None):
    if job.get("held"):
        time.sleep(PEND_SECS)
        job = _load(job_id) or job
        if job["state"] == "F":
            return  # deleted while it waited
        for k in ("held", "comment", "pend_reason"):
            job.pop(k, None)
        _save(job_id, job)
    null = os.open(os.devnull, os.O_RDONLY)
    out = os.open(job["out"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    if job["err"] == job["out"]:
        err = os.dup(out)
    else:
        err = os.open(job["err"], os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    pid = os.fork()
    if pid == 0:
        os.setpgid(0, 0)
        os.dup2(null, 0)
        os.dup2(out, 1)
        os.dup2(err, 2)
        os.chdir(cwd or os.path.expanduser("~"))
        argv = ["bash", _path(job_id, "script")]
        if job.get("runs_on") and ON_NODE:
            argv = ON_NODE + [job["runs_on"]] + argv
        os.execvpe(argv[0], argv, env)
    for fd in (null, out, err):
        os.close(fd)
    job.update(state="R", pid=pid, start=time.time())
    _save(job_id, job)
    _, status = os.waitpid(pid, 0)
    job = _load(job_id) or job
    if os.WIFSIGNALED(status):
        code = 256 + os.WTERMSIG(status)
    else:
        code = os.WEXITSTATUS(status)
    if job.get("exit") is None:
        job["exit"] = code
    job["state"] = "F"
    _save(job_id, job)
    _end_jsm_steps(job_id)


def _terminate(job_id, job, code):
    """End a job as the scheduler does: TERM to its process group, `code` as its exit."""
    job["exit"] = code
    if job["state"] == "Q" and (job.get("comment") or job.get("held")):
        job["state"] = "F"  # never started: nothing to wait for
    _save(job_id, job)
    if job.get("pid"):
        try:
            os.killpg(job["pid"], signal.SIGTERM)
        except ProcessLookupError:
            pass
    _end_jsm_steps(job_id)


def _end_jsm_steps(job_id):
    """A job's end ends the tasks of its jsrun steps too (they run apart from jsrun)."""
    jsm = os.path.join(SPOOL, f"jsm-{job_id}")
    try:
        names = os.listdir(jsm)
    except OSError:
        return
    for name in names:
        if not name.endswith(".pids"):
            continue
        try:
            with open(os.path.join(jsm, name[:-5] + ".state")) as f:
                if not f.read().startswith("Running"):
                    continue  # ended: its pids may belong to someone else by now
            with open(os.path.join(jsm, name)) as f:
                pids = [int(p) for p in f.read().split()]
        except (OSError, ValueError):
            continue
        for pid in pids:
            try:
                os.killpg(pid, signal.SIGKILL)
            except (ProcessLookupError, PermissionError):
                pass


def _unknown(cmd, job_id):
    print(f"{cmd}: Unknown Job Id {job_id}", file=sys.stderr)
    return 153


def qstat(argv):
    ids = [a for a in argv if not a.startswith("-") and a != "json"]
    history = "-x" in argv
    full_json = "-f" in argv and "json" in argv
    jobs, rc = {}, 0
    for job_id in ids:
        job = _load(job_id)
        if job is None or (job["state"] == "F" and not history):
            rc = _unknown("qstat", job_id)
            continue
        entry = {"Job_Name": job["name"], "job_state": job["state"], "queue": "workq",
                 "Output_Path": f"{SERVER}:{job['out']}", "Error_Path": f"{SERVER}:{job['err']}"}
        if job["state"] in ("R", "F"):
            hosts = job.get("nodes") or [socket.gethostname().split(".")[0]]
            entry["exec_host"] = "+".join(f"{h}/0" for h in hosts)
            entry["exec_vnode"] = "+".join(f"({h}:ncpus=1)" for h in hosts)
        if job["state"] == "F":
            entry["Exit_status"] = job["exit"]
        if job.get("comment") and job["state"] == "Q":
            entry["comment"] = job["comment"]
        jobs[job_id] = entry
    if full_json:
        doc = {"timestamp": int(time.time()), "pbs_version": "2022.1.1", "pbs_server": SERVER}
        if jobs:
            doc["Jobs"] = jobs
        print(json.dumps(doc, indent=4))
    else:
        if jobs:
            print("Job id            Name             User              Time Use S Queue")
            print("----------------  ---------------- ----------------  -------- - -----")
        user = os.environ.get("USER", "root")
        for job_id, e in jobs.items():
            print(f"{job_id:<17} {e['Job_Name'][:16]:<16} {user[:16]:<16}  00:00:00 {e['job_state']} workq")
    return rc


def qdel(argv):
    rc = 0
    for job_id in [a for a in argv if not a.startswith("-")]:
        job = _load(job_id)
        if job is None:
            rc = _unknown("qdel", job_id)
            continue
        if job["state"] == "F":
            print(f"qdel: Job has finished {job_id}", file=sys.stderr)
            rc = 35
            continue
        _terminate(job_id, job, 256 + signal.SIGTERM)
    return rc


def bsub(argv):
    args = [a for a in argv if not a.startswith("-")]
    if not args:
        script = sys.stdin.read()
    else:
        try:
            with open(args[0]) as f:
                script = f.read()
        except OSError:
            print(f"{args[0]}: No such file or directory. Job not submitted.", file=sys.stderr)
            return 255
    opts = _directives(script, "#BSUB")
    queue = opts.get("-q", ["normal"])[-1]
    if queue != "normal":
        print(f"{queue}: No such queue. Job not submitted.", file=sys.stderr)
        return 255
    job_id = _next_id("")
    os.makedirs(os.path.join(SPOOL, job_id))
    name = opts.get("-J", ["NONAME"])[-1]
    cwd = os.getcwd()
    out = opts.get("-o", [os.path.join(cwd, f"{name}.{job_id}.out")])[-1]
    err = opts.get("-e", [out])[-1]
    with open(_path(job_id, "script"), "w") as f:
        f.write(script)
    # The script runs on the launch node (`batch1`, this machine); jsrun starts ranks on
    # the compute hosts.
    nodes = _job_nodes(int(opts.get("-nnodes", ["1"])[-1]))
    if nodes is None:
        print("Bad resource requirement syntax. Job not submitted.", file=sys.stderr)
        return 255
    job = {"name": name, "state": "Q", "pid": None, "exit": None, "out": out, "err": err,
           "nodes": nodes}
    _save(job_id, job)
    env = dict(os.environ, LSB_JOBID=job_id, LSB_JOBNAME=name, LS_SUBCWD=cwd,
               LSB_MCPU_HOSTS="batch1 1 " + " ".join(f"{h} 42" for h in nodes),
               LSB_HOSTS="batch1 " + " ".join(nodes))
    _start(job_id, job, env)
    print(f"Job <{job_id}> is submitted to queue <{queue}>.")
    return 0


def bjobs(argv):
    ids = [a for a in argv if a.isdigit()]
    rc = 0
    if "pend_reason" in argv:
        for job_id in ids:
            job = _load(job_id)
            reason = job.get("pend_reason") if job and job["state"] == "Q" else None
            print(reason or "-")
        return 0
    for job_id in ids:
        job = _load(job_id)
        if job is None:
            print(f"Job <{job_id}> is not found", file=sys.stderr)
            rc = 255
            continue
        if job["state"] == "F":
            stat = "DONE" if job["exit"] == 0 else "EXIT"
            code = "-" if job["exit"] == 0 else str(job["exit"])
        else:
            stat, code = ("PEND" if job["state"] == "Q" else "RUN"), "-"
        print(f"{job_id} {stat} {code}")
    return rc


def bkill(argv):
    rc = 0
    for job_id in [a for a in argv if a.isdigit()]:
        job = _load(job_id)
        if job is None:
            print(f"Job <{job_id}>: No matching job found", file=sys.stderr)
            rc = 255
            continue
        if job["state"] == "F":
            print(f"Job <{job_id}>: Job has already finished", file=sys.stderr)
            rc = 255
            continue
        _terminate(job_id, job, 128 + signal.SIGTERM)
        print(f"Job <{job_id}> is being terminated")
    return rc


# Cobalt flavour (orc-launcher-kit/sim/cobalt/bin): job ids are plain integers, nodes are Cray nids
# starting at 3824, and qstat keeps no history (a finished job is simply not listed).
COBALT_FIRST_NID = 3824


def _cobalt_opts(argv, script):
    """Options from the command line and `#COBALT` lines (the command line wins)."""
    opts = _directives(script, "#COBALT")
    i = 0
    while i < len(argv) - 1:
        if argv[i].startswith("-"):
            opts.setdefault(argv[i], []).append(argv[i + 1])
            i += 2
        else:
            i += 1
    return opts


def cobalt_qsub(argv):
    files = [a for i, a in enumerate(argv)
             if not a.startswith("-") and (i == 0 or not argv[i - 1].startswith("-"))]
    if not files:
        print("Usage: qsub.py [options] <executable> [<excutable options>]", file=sys.stderr)
        return 1
    try:
        with open(files[-1]) as f:
            script = f.read()
    except OSError:
        print(f"command {files[-1]} not found, or is not a file", file=sys.stderr)
        return 1
    opts = _cobalt_opts(argv, script)
    queue = opts.get("-q", opts.get("--queue", ["default"]))[-1]
    if queue != "default":
        print(f"'{queue}' is not a valid queue", file=sys.stderr)
        return 1
    nodes = int(opts.get("-n", opts.get("--nodecount", ["1"]))[-1])
    if NODES and nodes > len(NODES):
        print(f"Requested nodes ({nodes}) exceeds the partition's node count", file=sys.stderr)
        return 1
    job_id = _next_id("")
    os.makedirs(os.path.join(SPOOL, job_id))
    name = opts.get("--jobname", ["N/A"])[-1]
    cwd = opts.get("--cwd", [os.getcwd()])[-1]
    out = opts.get("-o", [os.path.join(cwd, f"{job_id}.output")])[-1]
    err = opts.get("-e", [os.path.join(cwd, f"{job_id}.error")])[-1]
    with open(_path(job_id, "script"), "w") as f:
        f.write(script)
    job = {"name": name, "state": "Q", "pid": None, "exit": None, "out": out, "err": err}
    _save(job_id, job)
    part = f"{COBALT_FIRST_NID}-{COBALT_FIRST_NID + nodes - 1}" if nodes > 1 else str(COBALT_FIRST_NID)
    env = dict(os.environ, COBALT_JOBID=job_id, COBALT_PARTNAME=part,
               COBALT_JOBSIZE=str(nodes), COBALT_QUEUE=queue)
    _start(job_id, job, env, cwd)
    print(f"Job routed to queue \"{queue}\".")
    print(job_id)
    return 0


def cobalt_qstat(argv):
    ids = [a for i, a in enumerate(argv)
           if a.isdigit() and (i == 0 or argv[i - 1] not in ("-u", "--header"))]
    rows = []
    for job_id in ids:
        job = _load(job_id)
        if job is None or job["state"] == "F":
            continue
        state = "queued" if job["state"] == "Q" else ("exiting" if job.get("exit") else "running")
        rows.append((job_id, state))
    if rows:
        print("JobId   State  ")
        print("=================")
        for job_id, state in rows:
            print(f"{job_id:<7} {state}")
    return 0


def cobalt_qdel(argv):
    for job_id in [a for a in argv if a.isdigit()]:
        job = _load(job_id)
        if job is None or job["state"] == "F":
            continue
        _terminate(job_id, job, 128 + signal.SIGTERM)
    print("      Deleted Jobs")
    print("JobID  User")
    print("=====================")
    for job_id in [a for a in argv if a.isdigit()]:
        print(f"{job_id}  {os.environ.get('USER', 'root')}")
    return 0


def main(flavour="pbs-lsf"):
    cmd = os.path.basename(sys.argv[0])
    if flavour == "cobalt":
        commands = {"qsub": cobalt_qsub, "cqsub": cobalt_qsub, "qstat": cobalt_qstat,
                    "qdel": cobalt_qdel}
    else:
        commands = {"qsub": qsub, "qstat": qstat, "qdel": qdel,
                    "bsub": bsub, "bjobs": bjobs, "bkill": bkill}
    sys.exit(commands[cmd](sys.argv[1:]))
