/* The program the testing guide (docs/testing.md) tests: an XDP filter that
 * drops UDP datagrams to `blocked_port` (a `const volatile` setting the loader
 * writes into .rodata) unless their source address is in the `allowed` hash,
 * and counts each verdict per CPU in `verdicts` (PERCPU_ARRAY, index =
 * XDP action). */
#include <linux/types.h>
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/ip.h>
#include <linux/in.h>
#include <linux/udp.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u16 blocked_port = 0;

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 5);
	__type(key, __u32);
	__type(value, __u64);
} verdicts SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, __u32);   /* IPv4 source address, network order */
	__type(value, __u32); /* unused */
} allowed SEC(".maps");

static __always_inline int count(__u32 verdict)
{
	__u64 *n = bpf_map_lookup_elem(&verdicts, &verdict);

	if (n)
		*n += 1;
	return verdict;
}

SEC("xdp")
int xdp_filter(struct xdp_md *ctx)
{
	void *data = (void *)(long)ctx->data;
	void *data_end = (void *)(long)ctx->data_end;
	struct ethhdr *eth = data;
	struct iphdr *ip = data + sizeof(*eth);
	struct udphdr *udp;

	if ((void *)(ip + 1) > data_end)
		return count(XDP_PASS);
	if (eth->h_proto != bpf_htons(ETH_P_IP) || ip->protocol != IPPROTO_UDP ||
	    ip->ihl != 5)
		return count(XDP_PASS);
	udp = (void *)(ip + 1);
	if ((void *)(udp + 1) > data_end)
		return count(XDP_DROP);
	if (udp->dest != bpf_htons(blocked_port))
		return count(XDP_PASS);
	if (bpf_map_lookup_elem(&allowed, &ip->saddr))
		return count(XDP_PASS);
	return count(XDP_DROP);
}
