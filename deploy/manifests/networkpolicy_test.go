package manifests_test

import (
	"fmt"
	"slices"
	"sort"
	"testing"

	networkingv1 "k8s.io/api/networking/v1"
	metav1 "k8s.io/apimachinery/pkg/apis/meta/v1"
	"k8s.io/apimachinery/pkg/labels"

	"github.com/trustplane/trustplane/deploy/manifests"
)

// pod is a sample pod the policies are evaluated against.
type pod struct {
	name, namespace string
	labels          map[string]string
}

func (p pod) String() string { return p.namespace + "/" + p.name }

func fn(name string) pod {
	return pod{name, "trustplane", map[string]string{"serving.knative.dev/service": name}}
}

// samplePods are one pod of each kind that could try to reach persist or auth: the functions,
// Knative's gateway and activator through which requests arrive, the Kafka broker's dispatcher
// that delivers the Trigger's events, Kafka itself and an unrelated pod.
var samplePods = []pod{
	fn("ingest"), fn("router"), fn("query"), fn("persist"), fn("auth"), fn("guard"),
	{"migrate", "trustplane", map[string]string{"app.kubernetes.io/name": "migrate"}},
	{"gateway", "kourier-system", map[string]string{"app": "3scale-kourier-gateway"}},
	{"activator", "knative-serving", map[string]string{"app": "activator"}},
	{"kafka-broker-dispatcher", "knative-eventing", map[string]string{"app": "kafka-broker-dispatcher"}},
	{"broker", "kafka", map[string]string{"strimzi.io/cluster": "trustplane-kafka"}},
	{"anything", "default", map[string]string{"app": "anything"}},
}

func selects(t *testing.T, sel *metav1.LabelSelector, l map[string]string) bool {
	t.Helper()
	if sel == nil {
		return false
	}
	s, err := metav1.LabelSelectorAsSelector(sel)
	if err != nil {
		t.Fatalf("selector %v: %v", sel, err)
	}
	return s.Matches(labels.Set(l))
}

// peerMatches reports whether peer, in a policy of namespace ns, names p. Namespaces carry
// only their kubernetes.io/metadata.name label, as every namespace does. An ipBlock is taken to
// match every pod: pod addresses fall in cluster ranges such blocks usually cover.
func peerMatches(t *testing.T, ns string, peer networkingv1.NetworkPolicyPeer, p pod) bool {
	if peer.IPBlock != nil {
		return true
	}
	nsLabels := map[string]string{"kubernetes.io/metadata.name": p.namespace}
	if peer.NamespaceSelector == nil && p.namespace != ns {
		return false
	}
	if peer.NamespaceSelector != nil && !selects(t, peer.NamespaceSelector, nsLabels) {
		return false
	}
	return peer.PodSelector == nil || selects(t, peer.PodSelector, p.labels)
}

func hasType(np *networkingv1.NetworkPolicy, typ networkingv1.PolicyType) bool {
	if len(np.Spec.PolicyTypes) == 0 { // the API server's default
		return typ == networkingv1.PolicyTypeIngress || (typ == networkingv1.PolicyTypeEgress && len(np.Spec.Egress) > 0)
	}
	return slices.Contains(np.Spec.PolicyTypes, typ)
}

// allowed reports whether the policies let from open a connection to to (on some port), as
// Kubernetes evaluates them: a pod that no policy of a direction selects is open in that
// direction; one that some do is open to what any of their rules admits.
func allowed(t *testing.T, nps []*networkingv1.NetworkPolicy, from, to pod) bool {
	t.Helper()
	side := func(self, other pod, typ networkingv1.PolicyType) bool {
		isolated := false
		for _, np := range nps {
			if np.Namespace != self.namespace || !selects(t, &np.Spec.PodSelector, self.labels) || !hasType(np, typ) {
				continue
			}
			isolated = true
			var peersOfRules [][]networkingv1.NetworkPolicyPeer
			if typ == networkingv1.PolicyTypeIngress {
				for _, r := range np.Spec.Ingress {
					peersOfRules = append(peersOfRules, r.From)
				}
			} else {
				for _, r := range np.Spec.Egress {
					peersOfRules = append(peersOfRules, r.To)
				}
			}
			for _, peers := range peersOfRules {
				if len(peers) == 0 { // a rule without peers admits everyone
					return true
				}
				for _, peer := range peers {
					if peerMatches(t, np.Namespace, peer, other) {
						return true
					}
				}
			}
		}
		return !isolated
	}
	return side(from, to, networkingv1.PolicyTypeEgress) && side(to, from, networkingv1.PolicyTypeIngress)
}

func namesOf(ok func(p pod) bool) []string {
	var out []string
	for _, p := range samplePods {
		if ok(p) {
			out = append(out, p.String())
		}
	}
	sort.Strings(out)
	return out
}

// persist takes the tenant from each delivery and auth answers who a key belongs to, so neither
// may be reachable by whoever is in the cluster. Requests reach a Knative function through the
// gateway or the activator, which proxy them, so those are the only pods that may connect to
// persist's and auth's pods; which callers may use the gateway is then held on their egress:
// among this namespace's pods, only auth's callers (ingest, router, query). The broker's
// dispatcher, which delivers to persist, reaches it through the gateway as well, never directly.
func TestPersistAndAuthAdmitOnlyTheirPaths(t *testing.T) {
	for _, overlay := range manifests.Overlays {
		t.Run(overlay, func(t *testing.T) {
			for _, problem := range persistAndAuthPaths(t, render(t, overlay).NetworkPolicies) {
				t.Error(problem)
			}
		})
	}
}

// persistAndAuthPaths returns what the policies admit beyond persist's and auth's paths.
func persistAndAuthPaths(t *testing.T, nps []*networkingv1.NetworkPolicy) []string {
	t.Helper()
	var problems []string
	knative := []string{"knative-serving/activator", "kourier-system/gateway"}
	for _, target := range []string{"persist", "auth"} {
		got := namesOf(func(p pod) bool { return allowed(t, nps, p, fn(target)) })
		// Whether the gateway and activator may send is their own namespaces' affair; what
		// persist's and auth's pods admit is this project's.
		admitted := namesOf(func(p pod) bool {
			ingressOnly := []*networkingv1.NetworkPolicy{}
			for _, np := range nps {
				if np.Namespace == "trustplane" && hasType(np, networkingv1.PolicyTypeIngress) {
					ingressOnly = append(ingressOnly, &networkingv1.NetworkPolicy{ObjectMeta: np.ObjectMeta,
						Spec: networkingv1.NetworkPolicySpec{PodSelector: np.Spec.PodSelector, Ingress: np.Spec.Ingress,
							PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeIngress}}})
				}
			}
			return allowed(t, ingressOnly, p, fn(target))
		})
		if !slices.Equal(admitted, knative) {
			problems = append(problems, fmt.Sprintf("%s's pods admit connections from %v, want only %v", target, admitted, knative))
		}
		for _, name := range got {
			if !slices.Contains(knative, name) {
				problems = append(problems, fmt.Sprintf("%s reaches %s directly", name, target))
			}
		}
	}
	gateway := samplePods[slices.IndexFunc(samplePods, func(q pod) bool { return q.name == "gateway" })]
	callers := namesOf(func(p pod) bool { return p.namespace == "trustplane" && allowed(t, nps, p, gateway) })
	if want := []string{"trustplane/ingest", "trustplane/query", "trustplane/router"}; !slices.Equal(callers, want) {
		problems = append(problems, fmt.Sprintf("pods of trustplane that may call functions through the gateway: %v, want %v", callers, want))
	}
	return problems
}

// The check above catches a policy that opens persist to everyone, or lets persist call
// other functions.
func TestPersistAndAuthPathCheckCatchesAnOpening(t *testing.T) {
	nps := render(t, "dev").NetworkPolicies
	for name, open := range map[string]*networkingv1.NetworkPolicy{
		"persist open to all": {
			ObjectMeta: metav1.ObjectMeta{Name: "open", Namespace: "trustplane"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"serving.knative.dev/service": "persist"}},
				Ingress:     []networkingv1.NetworkPolicyIngressRule{{}},
			},
		},
		"persist calls the gateway": {
			ObjectMeta: metav1.ObjectMeta{Name: "out", Namespace: "trustplane"},
			Spec: networkingv1.NetworkPolicySpec{
				PodSelector: metav1.LabelSelector{MatchLabels: map[string]string{"serving.knative.dev/service": "persist"}},
				PolicyTypes: []networkingv1.PolicyType{networkingv1.PolicyTypeEgress},
				Egress:      []networkingv1.NetworkPolicyEgressRule{{}},
			},
		},
	} {
		if problems := persistAndAuthPaths(t, append(slices.Clone(nps), open)); len(problems) == 0 {
			t.Errorf("%s: not caught", name)
		}
	}
}

// The Redis of the shared rate limits, when one runs in trustplane with the label
// app.kubernetes.io/name: redis, is reached by query and admits query alone of the functions.
func TestOnlyQueryReachesTheLimitsRedis(t *testing.T) {
	redis := pod{"redis", "trustplane", map[string]string{"app.kubernetes.io/name": "redis"}}
	for _, overlay := range manifests.Overlays {
		t.Run(overlay, func(t *testing.T) {
			nps := render(t, overlay).NetworkPolicies
			got := namesOf(func(p pod) bool { return p.namespace == "trustplane" && allowed(t, nps, p, redis) })
			if want := []string{"trustplane/query"}; !slices.Equal(got, want) {
				t.Errorf("pods of trustplane that reach the limits Redis: %v, want %v", got, want)
			}
		})
	}
}
