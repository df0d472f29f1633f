# The names of the CI SLURM cluster, sourced by .ci/slurm_up.sh and .ci/slurm_down.sh (one place for both).
# Every node is a network namespace named after the node, reached through a veth on one bridge; all addresses are
# on a private /24 that only these namespaces and the bridge use.
NODE_PREFIX=scinode                  # nodes scinode1 .. scinodeN: namespace, host name and SLURM node name
BRIDGE=scislurm0                     # the host's side of the cluster network; slurmctld listens on its address
VETH_PREFIX=scislurm                 # host end of node i's veth: scislurm<i> (the node's end is eth0)
NET=10.213.0                         # bridge .1, node i .(10+i)
CONTROLLER_ADDR=$NET.1
HOSTS_BEGIN="# >>> scitaste CI SLURM nodes, written by .ci/slurm_up.sh"
HOSTS_END="# <<< scitaste CI SLURM nodes"

node_name() { echo "$NODE_PREFIX$1"; }
node_addr() { echo "$NET.$((10 + $1))"; }
# /etc/hosts without this cluster's block
hosts_without_nodes() { awk -v b="$HOSTS_BEGIN" -v e="$HOSTS_END" '$0 == b {skip = 1} !skip {print} $0 == e {skip = 0}' /etc/hosts; }
# the namespaces of this cluster that exist now (an earlier run may have had another node count)
cluster_namespaces() { ip netns list 2>/dev/null | awk '{print $1}' | grep -E "^$NODE_PREFIX[0-9]+$" || true; }
