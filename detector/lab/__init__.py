"""The traffic lab: real VPN, proxy and normal traffic between network namespaces, captured and labelled."""
