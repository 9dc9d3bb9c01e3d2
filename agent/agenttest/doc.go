// Package agenttest runs an agent.Engine against a scripted LwM2M server
// over a simulated network on a virtual clock. Days of lifetimes pass in
// milliseconds, and faults (loss, duplication, reordering) are drawn from
// a seeded source so a failing run replays from its seed.
package agenttest
