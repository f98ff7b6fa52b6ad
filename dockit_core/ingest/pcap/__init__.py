"""A packet capture as a source: pcap and pcapng files (plain or gzip) read frame by frame
(`reader`), their IP, TCP and UDP headers read (`frames`), and TCP streams put back together
(`reassembly`) into the flows that become channels, as a trace's sockets do."""
