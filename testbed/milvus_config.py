#!/usr/bin/env python3
"""Render milvus.yaml (and glog.conf) for one Milvus instance of the local test bed.

The wheel ships `config.yaml.template`: the upstream milvus.yaml with placeholders of the
form `{{ name }}`, `{{ name: default }}` or `{{ name(type): default }}`. We substitute the
placeholders, parse the result and deep-merge the bed's overrides (external etcd, Kafka or
Pulsar, local storage, loopback addresses, trimmed for a 2-core machine).

Run with the bed's venv interpreter (needs PyYAML):
  milvus_config.py --template T --instance-dir D --etcd HOST:PORT
                   (--kafka HOST:PORT | --mq pulsar --pulsar HOST:PORT --pulsar-web-port P)
                   --port-shift N --root ROOT --prefix PREFIX --tt-msg-enabled true|false
                   [--dml-channels 4]
Writes D/conf/milvus.yaml and D/conf/glog.conf (D/conf is the instance's MILVUSCONF).
"""
import argparse
import os
import re
import sys

import yaml

# Base port set of the SOURCE (testbed.md §1); targets add 100, 200, ...
BASE_PORTS = {
    "proxy.port": 19530,
    "proxy.internalPort": 19529,
    "rootCoord.port": 22100,  # testbed.md says 53100: inside the ephemeral range, see docs/milvus-notes.md
    "queryCoord.port": 19531,
    "queryNode.port": 21123,
    "indexNode.port": 21121,
    "dataCoord.port": 13333,
    "dataNode.port": 21124,
    # unused (bindIndexNodeMode is off) but keep it distinct per instance anyway
    "indexCoord.bindIndexNodeMode.address.port": 22930,
}

PLACEHOLDER = re.compile(r"\{\{\s*([A-Za-z0-9_]+)(?:\(([a-z]+)\))?\s*(?::\s*([^}]*?))?\s*\}\}")


def render_template(text, values):
    """Replace every placeholder by values[name], else its default, else an empty string."""
    def sub(m):
        name, default = m.group(1), m.group(3)
        if name in values:
            return str(values[name])
        return default if default is not None else '""'
    return PLACEHOLDER.sub(sub, text)


def deep_merge(dst, src):
    for k, v in src.items():
        if isinstance(v, dict) and isinstance(dst.get(k), dict):
            deep_merge(dst[k], v)
        else:
            dst[k] = v
    return dst


def dotted(d):
    """{'a.b.c': v} -> {'a': {'b': {'c': v}}}"""
    out = {}
    for key, v in d.items():
        cur = out
        parts = key.split(".")
        for p in parts[:-1]:
            cur = cur.setdefault(p, {})
        cur[parts[-1]] = v
    return out


def overrides(a):
    inst = os.path.abspath(a.instance_dir)
    ports = {k: v + a.port_shift for k, v in BASE_PORTS.items()}
    o = {
        # --- external etcd, own root per instance
        "etcd.endpoints": a.etcd,
        "etcd.rootPath": a.root,
        "etcd.metaSubPath": "meta",
        "etcd.kvSubPath": "kv",
        "etcd.use.embed": False,
        "etcd.data.dir": os.path.join(inst, "etcd-unused"),
        "etcd.log.level": "warn",
        "etcd.log.path": "stdout",
        "metastore.type": "etcd",
        # --- storage without MinIO
        "common.storageType": "local",
        "localStorage.path": os.path.join(inst, "data"),
        # --- message queue: the shared Kafka or Pulsar, channel namespace per instance
        "mq.type": a.mq,
        "rocksmq.path": os.path.join(inst, "rdb"),
        "rocksmq.lrucacheratio": 0.01,
        "natsmq.server.storeDir": os.path.join(inst, "nats"),
        "natsmq.server.monitor.logFile": os.path.join(inst, "logs", "nats.log"),
        "common.chanNamePrefix.cluster": a.prefix,
        # no code default in 2.3: name it explicitly (topic = <cluster>-replicate-msg)
        "common.chanNamePrefix.replicateMsg": "replicate-msg",
        "common.ttMsgEnabled": a.tt_msg_enabled == "true",
        # --- loopback everywhere (advertised addresses)
        "rootCoord.ip": "127.0.0.1",
        "proxy.ip": "127.0.0.1",
        "queryCoord.ip": "127.0.0.1",
        "queryNode.ip": "127.0.0.1",
        "indexNode.ip": "127.0.0.1",
        "dataCoord.ip": "127.0.0.1",
        "dataNode.ip": "127.0.0.1",
        "indexCoord.bindIndexNodeMode.address":
            "127.0.0.1:%d" % ports.pop("indexCoord.bindIndexNodeMode.address.port"),
        # --- logs into the instance dir, warn level
        "log.level": "warn",
        "log.file.rootPath": os.path.join(inst, "logs"),
        "log.stdout": False,
        # --- trimming for a 2-core host (testbed.md §5)
        "rootCoord.dmlChannelNum": a.dml_channels,
        "proxy.timeTickInterval": a.time_tick_ms,
        "quotaAndLimits.enabled": False,
        "common.threadCoreCoefficient.highPriority": 2,
        "common.threadCoreCoefficient.middlePriority": 1,
        "common.threadCoreCoefficient.lowPriority": 1,
        "queryNode.segcore.interimIndex.enableIndex": False,
        "queryNode.segcore.knowhereThreadPoolNumRatio": 1,
        "queryNode.segcore.cgoPoolSizeRatio": 1.0,
        "queryNode.stats.publishInterval": 5000,
        "queryCoord.checkInterval": 3000,
        "queryCoord.distPullInterval": 2000,
        "queryCoord.autoBalance": False,
        # Compaction only when asked (Collection.compact()): the TTL test expires rows that way;
        # automatic compaction would spend the CPU the tests need.
        "dataCoord.enableCompaction": True,
        "dataCoord.compaction.enableAutoCompaction": False,
        "dataNode.dataSync.maxParallelSyncTaskNum": 2,
        "common.gracefulStopTimeout": 10,
        # Session lease in etcd. With the default 30 s, a Milvus frozen (SIGSTOP) for 30 s
        # loses its lease and shuts itself down on SIGCONT ("disconnected from etcd, process
        # will exit"); the fault tests freeze TARGET for 30 s. 60 s keeps it alive; a restart
        # after kill -9 is not slowed by the longer lease (measured: healthy after 2 s).
        "common.session.ttl": 60,
    }
    if a.mq == "kafka":
        o.update({"kafka.brokerList": a.kafka, "kafka.readTimeout": 10})
    else:
        host, port = a.pulsar.rsplit(":", 1)
        o.update({
            "pulsar.address": host,
            "pulsar.port": int(port),
            # the broker's own web port: the template's 80 assumes a proxy and breaks
            # Milvus's subscription cleanup
            "pulsar.webport": a.pulsar_web_port,
            "pulsar.maxMessageSize": 5242880,  # the 2.3 default; below the broker's 100 MiB
            "pulsar.tenant": "public",
            "pulsar.namespace": "default",
        })
    o.update(ports)
    return dotted(o)


GLOG = """# written by the test bed (testbed/milvus_config.py)
--logtostdout=false
--logtostderr=false
--alsologtostderr=false
# INFO, WARNING, ERROR, FATAL = 0, 1, 2, 3
--minloglevel=1
--log_dir={logdir}
--max_log_size=200
--stop_logging_if_full_disk=true
"""


def main():
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--template", required=True)
    p.add_argument("--instance-dir", required=True)
    p.add_argument("--etcd", required=True)
    p.add_argument("--mq", choices=["kafka", "pulsar"], default="kafka")
    p.add_argument("--kafka", help="HOST:PORT of the Kafka broker (--mq kafka)")
    p.add_argument("--pulsar", help="HOST:PORT of the Pulsar broker service (--mq pulsar)")
    p.add_argument("--pulsar-web-port", type=int, help="the Pulsar broker's admin/web port")
    p.add_argument("--port-shift", type=int, required=True)
    p.add_argument("--root", required=True)
    p.add_argument("--prefix", required=True)
    p.add_argument("--tt-msg-enabled", choices=["true", "false"], required=True)
    p.add_argument("--dml-channels", type=int, default=4)
    p.add_argument("--time-tick-ms", type=int, default=500,
                   help="proxy.timeTickInterval (Milvus's default is 200; 500 spares a 2-core host)")
    a = p.parse_args()
    if a.mq == "kafka" and not a.kafka:
        p.error("--mq kafka needs --kafka")
    if a.mq == "pulsar" and not (a.pulsar and a.pulsar_web_port):
        p.error("--mq pulsar needs --pulsar and --pulsar-web-port")

    inst = os.path.abspath(a.instance_dir)
    conf_dir = os.path.join(inst, "conf")
    for d in (conf_dir, os.path.join(inst, "logs"), os.path.join(inst, "data")):
        os.makedirs(d, exist_ok=True)

    with open(a.template, encoding="utf-8") as f:
        text = render_template(f.read(), {})
    cfg = yaml.safe_load(text)
    if not isinstance(cfg, dict) or "etcd" not in cfg or "common" not in cfg:
        sys.exit("milvus_config: %s does not look like a milvus.yaml template" % a.template)
    deep_merge(cfg, overrides(a))

    with open(os.path.join(conf_dir, "milvus.yaml"), "w", encoding="utf-8") as f:
        f.write("# generated by testbed/milvus_config.py from the wheel's config.yaml.template\n")
        yaml.safe_dump(cfg, f, sort_keys=False, default_flow_style=False)
    with open(os.path.join(conf_dir, "glog.conf"), "w", encoding="utf-8") as f:
        f.write(GLOG.format(logdir=os.path.join(inst, "logs")))


if __name__ == "__main__":
    main()
