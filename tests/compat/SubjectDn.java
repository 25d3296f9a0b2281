// Prints the subject of a PEM certificate as Apache ZooKeeper's X509AuthenticationProvider
// names it: X500Principal.getName() (RFC 2253). Run as `java SubjectDn.java cert.pem`.
import java.io.FileInputStream;
import java.security.cert.CertificateFactory;
import java.security.cert.X509Certificate;

public class SubjectDn {
    public static void main(String[] args) throws Exception {
        try (FileInputStream in = new FileInputStream(args[0])) {
            X509Certificate cert =
                (X509Certificate) CertificateFactory.getInstance("X.509").generateCertificate(in);
            System.out.println(cert.getSubjectX500Principal().getName());
        }
    }
}
