module symptomdx.local/cluster/probe

go 1.24.0
