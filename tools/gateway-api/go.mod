module certroute.local/tools/gateway-api

go 1.26.0

// Not built: the local stack applies this version's standard-channel CRDs (config/crd/standard)
// from the module cache, so that Traefik's kubernetesGateway provider has Gateways to serve.
require sigs.k8s.io/gateway-api v1.6.3
