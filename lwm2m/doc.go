// Package lwm2m holds the LwM2M data model shared by the agent and the
// embedded server: paths, resource types, typed values and the content
// format numbers of the LwM2M 1.1 transport binding.
//
// The encoders and decoders for each content format live in sub-packages
// (tlv, senml, linkformat, text); they all speak in terms of [Record].
//
// See OMA-TS-LightweightM2M_Core-V1_1_1 §7.4 (data formats) and Appendix C
// (data types).
package lwm2m
