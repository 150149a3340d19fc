// Package controllers holds the LoadBalancer reconciler, which renders each
// LoadBalancer into ConfigMaps and a DaemonSet.
package controllers
