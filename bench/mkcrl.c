/*
 * mkcrl N CA.pem CA.key OUT.pem: a CRL signed by the CA that revokes N
 * random serial numbers (none of them a certificate's of scripts/mkcerts),
 * next update in a day. For the CRL cost figure of make bench.
 */
#include <gnutls/gnutls.h>
#include <gnutls/crypto.h>
#include <gnutls/x509.h>

#include <stdio.h>
#include <stdlib.h>
#include <time.h>

static void
check(int ret, const char *what)
{
	if (ret < 0) {
		fprintf(stderr, "mkcrl: %s: %s\n", what, gnutls_strerror(ret));
		exit(1);
	}
}

int
main(int argc, char **argv)
{
	gnutls_x509_crl_t crl;
	gnutls_x509_crt_t ca;
	gnutls_x509_privkey_t key;
	gnutls_datum_t d, out;
	unsigned char serial[16];
	time_t now = time(NULL);
	FILE *fp;
	long i, n;

	if (argc != 5 || (n = atol(argv[1])) < 0) {
		fprintf(stderr, "usage: mkcrl N CA.pem CA.key OUT.pem\n");
		return 2;
	}
	check(gnutls_global_init(), "init");
	check(gnutls_load_file(argv[2], &d), argv[2]);
	check(gnutls_x509_crt_init(&ca), "crt");
	check(gnutls_x509_crt_import(ca, &d, GNUTLS_X509_FMT_PEM), argv[2]);
	gnutls_free(d.data);
	check(gnutls_load_file(argv[3], &d), argv[3]);
	check(gnutls_x509_privkey_init(&key), "key");
	check(gnutls_x509_privkey_import(key, &d, GNUTLS_X509_FMT_PEM),
	    argv[3]);
	gnutls_free(d.data);
	check(gnutls_x509_crl_init(&crl), "crl");
	check(gnutls_x509_crl_set_version(crl, 2), "version");
	check(gnutls_x509_crl_set_this_update(crl, now - 60), "this update");
	check(gnutls_x509_crl_set_next_update(crl, now + 86400), "next update");
	for (i = 0; i < n; i++) {
		check(gnutls_rnd(GNUTLS_RND_NONCE, serial, sizeof(serial)),
		    "random");
		serial[0] = (unsigned char)((serial[0] & 0x7f) | 0x40);
		check(gnutls_x509_crl_set_crt_serial(crl, serial,
		    sizeof(serial), now - 120), "serial");
	}
	check(gnutls_x509_crl_sign2(crl, ca, key, GNUTLS_DIG_SHA256, 0),
	    "sign");
	check(gnutls_x509_crl_export2(crl, GNUTLS_X509_FMT_PEM, &out),
	    "export");
	if ((fp = fopen(argv[4], "w")) == NULL ||
	    fwrite(out.data, 1, out.size, fp) != out.size || fclose(fp) != 0) {
		fprintf(stderr, "mkcrl: cannot write %s\n", argv[4]);
		return 1;
	}
	return 0;
}
